import type {
  Enforcement,
  NetworkRuleBypassOptions,
  ParsedIpRule,
  PrivateEndpointConnectionState,
  RuleActions,
} from '../network/index.js';
import type { RegistryRecord } from '../store/types.js';
import type { SkuName } from './skus.js';

/** A private endpoint connection as stored: its own listener address and its approval state. */
export interface StoredPrivateEndpoint {
  name: string;
  address: string;
  status: PrivateEndpointConnectionState;
  description: string;
}

/** An IP rule as stored: canonical value, and optionally pull-only and/or an expiry instant. */
export interface StoredRule {
  action: 'Allow';
  /** The canonical address or range; `ipSet:<name>` for a rule naming an IP set. */
  value: string;
  ipSet?: string;
  actions?: RuleActions;
  expiresAt?: string;
}

/** A rule as the API returns it: as stored, plus `expired` once its instant has passed. */
export function ruleResource(rule: StoredRule, now = Date.now()) {
  return {
    action: rule.action,
    value: rule.value,
    ...(rule.ipSet !== undefined ? { ipSet: rule.ipSet } : {}),
    ...(rule.actions !== undefined ? { actions: rule.actions } : {}),
    ...(rule.expiresAt !== undefined ? { expiresAt: rule.expiresAt } : {}),
    ...(rule.expiresAt !== undefined && Date.parse(rule.expiresAt) <= now ? { expired: true } : {}),
  };
}

/** What a registry record's `properties` hold (settable settings, credentials, endpoints). */
export interface RegistrySettings {
  sku: SkuName;
  adminUserEnabled: boolean;
  anonymousPullEnabled: boolean;
  publicNetworkAccess: 'Enabled' | 'Disabled';
  networkRuleSet: {
    defaultAction: 'Allow' | 'Deny';
    ipRules: StoredRule[];
    /** ReportOnly: refusals are logged (marked) and let through. Absent means Enforced. */
    enforcement?: Enforcement;
  };
  networkRuleBypassOptions: NetworkRuleBypassOptions;
  privateEndpointConnections: StoredPrivateEndpoint[];
  credentials: { username: string; passwords: { name: 'password' | 'password2'; value: string }[] };
}

/** Settings of a registry that was never configured (e.g. the default registry on first start). */
export function defaultSettings(name: string, sku: SkuName): RegistrySettings {
  return {
    sku,
    adminUserEnabled: false,
    anonymousPullEnabled: false,
    publicNetworkAccess: 'Enabled',
    networkRuleSet: { defaultAction: 'Allow', ipRules: [] },
    networkRuleBypassOptions: 'AzureServices',
    privateEndpointConnections: [],
    credentials: { username: name, passwords: [] },
  };
}

/**
 * The SKU assumed for a bare record (one created straight in the store, without settings). Records
 * Berth creates always carry their SKU, the default registry's included (`defaultRegistrySku`).
 */
const BARE_RECORD_SKU: SkuName = 'Premium';

/** Reads a record's settings, filling what an older or bare record lacks. */
export function settingsOf(record: RegistryRecord, defaultSku: SkuName = BARE_RECORD_SKU): RegistrySettings {
  const stored = record.properties as Partial<RegistrySettings>;
  const base = defaultSettings(record.name, defaultSku);
  return {
    ...base,
    ...stored,
    networkRuleSet: { ...base.networkRuleSet, ...stored.networkRuleSet },
    credentials: { ...base.credentials, ...stored.credentials },
  };
}

/** The ARM-shaped resource the API returns. */
export function toResource(record: RegistryRecord, settings: RegistrySettings, loginServer: string) {
  return {
    id: `/registries/${record.name}`,
    name: record.name,
    type: 'Berth/registries',
    sku: { name: settings.sku, tier: settings.sku },
    properties: {
      loginServer,
      creationDate: record.createdAt.toISOString(),
      provisioningState: 'Succeeded',
      adminUserEnabled: settings.adminUserEnabled,
      anonymousPullEnabled: settings.anonymousPullEnabled,
      publicNetworkAccess: settings.publicNetworkAccess,
      networkRuleSet: {
        defaultAction: settings.networkRuleSet.defaultAction,
        ipRules: settings.networkRuleSet.ipRules.map((r) => ruleResource(r)),
        ...(settings.networkRuleSet.enforcement === 'ReportOnly'
          ? { enforcement: 'ReportOnly' as const }
          : {}),
      },
      networkRuleBypassOptions: settings.networkRuleBypassOptions,
      privateEndpointConnections: settings.privateEndpointConnections.map((pe) =>
        toPrivateEndpointResource(record.name, pe),
      ),
    },
  };
}

export type RegistryResource = ReturnType<typeof toResource>;

/** The ARM-shaped private endpoint connection. */
export function toPrivateEndpointResource(registry: string, pe: StoredPrivateEndpoint) {
  return {
    id: `/registries/${registry}/privateEndpointConnections/${pe.name}`,
    name: pe.name,
    type: 'Berth/registries/privateEndpointConnections',
    properties: {
      privateEndpoint: { address: pe.address },
      privateLinkServiceConnectionState: {
        status: pe.status,
        description: pe.description,
        actionsRequired: 'None',
      },
      provisioningState: 'Succeeded',
    },
  };
}

/** What the caller should be told about how a rule it typed was read (RFC 9111 Warning texts). */
export function ipRuleWarnings(input: string, rule: ParsedIpRule, verb = 'stored'): string[] {
  const warnings: string[] = [];
  if (rule.hostBitsCleared)
    warnings.push(`IP rule '${input}' has host bits set; it was ${verb} as '${rule.value}'.`);
  if (rule.coversAllIPv4)
    warnings.push(
      `IP rule '${rule.value}' also matches every IPv4 client (IPv4 addresses are ::ffff:0:0/96 in IPv6).`,
    );
  return warnings;
}
