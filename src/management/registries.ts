import { generateSecret } from '../auth/passwords.js';
import { SecretBox } from '../auth/secret-box.js';
import { ManagementError } from '../errors/management.js';
import type {
  BlobStore,
  DenialAuditStore,
  IdentityStore,
  MetadataStore,
  RegistryRecord,
} from '../store/types.js';
import {
  defaultSettings,
  settingsOf,
  toResource,
  type RegistryResource,
  type RegistrySettings,
} from './registry-model.js';
import { matchesIfMatch, versionEtag } from './etags.js';
import { normaliseRules, type IpRuleBody } from './ip-rule-model.js';
import { NETWORK_RULES_PREMIUM_ONLY, planOf, type SkuName, type SkuPlans } from './skus.js';

export type { IpRuleBody } from './ip-rule-model.js';

/** The settable part of a registry body (read-only properties are accepted and ignored, as ARM does). */
export interface RegistryBody {
  sku?: { name: SkuName };
  properties?: {
    adminUserEnabled?: boolean;
    anonymousPullEnabled?: boolean;
    publicNetworkAccess?: 'Enabled' | 'Disabled';
    networkRuleSet?: {
      defaultAction?: 'Allow' | 'Deny';
      ipRules?: IpRuleBody[];
      enforcement?: 'Enforced' | 'ReportOnly';
    };
    networkRuleBypassOptions?: 'AzureServices' | 'None';
  };
}

/** A resource plus anything the caller should be told (e.g. a rule that was normalised). */
export interface RegistryResult {
  resource: RegistryResource;
  warnings: string[];
}

/** What a write is conditional on: the `If-Match` header as sent (`*`, or one or more ETags). */
export interface WriteCondition {
  ifMatch?: string | undefined;
}

/** A settings change computed from the current settings; `settings` is a private copy to change. */
export type SettingsChange<T> = (
  settings: RegistrySettings,
  record: RegistryRecord,
) => { settings: RegistrySettings; warnings: string[]; outcome: T; unchanged?: boolean };

/** Stored registry plus what a write told the caller. */
export interface Mutation<T> extends RegistryResult {
  etag: string;
  outcome: T;
}

const NAME_RE = /^[a-zA-Z0-9]{5,50}$/;
/** Compare-and-swap retries; each round at least one writer wins, so this bounds contention, not time. */
const MAX_WRITE_ATTEMPTS = 200;

/** The registry resource's ETag: changes with every stored change, and across delete + re-create. */
export function etagOf(record: RegistryRecord): string {
  return versionEtag(record.createdAt, record.version ?? 1);
}

function preconditionFailed(name: string): ManagementError {
  return new ManagementError(
    'PreconditionFailed',
    `The registry '${name}' has changed since it was read (If-Match did not match its ETag); read it again and retry.`,
  );
}

/** Registries as resources: validation, SKU rules, ARM PUT/PATCH semantics, deletion of content. */
export class RegistryManager {
  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly identities: IdentityStore,
    private readonly audit: DenialAuditStore,
    private readonly plans: SkuPlans,
    private readonly domain: string,
    private readonly defaultRegistry: string,
    /** Seals the admin user's passwords (retrievable, so encrypted rather than hashed). */
    private readonly box: SecretBox,
    /** Drops what the sign-in side keeps for a deleted registry (tokens, scope maps, sign-ins). */
    private readonly onDelete: (registry: string) => Promise<void> = async () => undefined,
  ) {}

  async list(): Promise<RegistryResource[]> {
    const records = await this.meta.listRegistries();
    return records.map((record) => this.resourceOf(record));
  }

  async get(name: string): Promise<RegistryResource> {
    return this.resourceOf(await this.record(name));
  }

  /** The resource and its ETag. */
  async getWithEtag(name: string): Promise<{ resource: RegistryResource; etag: string }> {
    const record = await this.record(name);
    return { resource: this.resourceOf(record), etag: etagOf(record) };
  }

  /**
   * Applies `change` to the registry's current settings and stores the result with a compare-and-swap
   * on the record version, re-reading and re-applying when another writer got there first, so no
   * update is lost. With `If-Match`, a record that moved on is a 412 instead.
   */
  async mutate<T>(
    name: string,
    change: SettingsChange<T>,
    condition: WriteCondition = {},
  ): Promise<Mutation<T>> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const record = await this.record(name);
      if (condition.ifMatch !== undefined && !matchesIfMatch(condition.ifMatch, etagOf(record)))
        throw preconditionFailed(record.name);
      const result = change(structuredClone(settingsOf(record)), record);
      // A no-op (e.g. adding a rule that is there) writes nothing, so the ETag stays what it was.
      if (result.unchanged)
        return {
          resource: this.resourceOf(record),
          etag: etagOf(record),
          warnings: result.warnings,
          outcome: result.outcome,
        };
      const version = record.version ?? 1;
      if (await this.meta.updateRegistry(record.name, { ...result.settings }, version)) {
        const stored: RegistryRecord = {
          ...record,
          properties: { ...result.settings },
          version: version + 1,
        };
        return {
          resource: this.resourceOf(stored),
          etag: etagOf(stored),
          warnings: result.warnings,
          outcome: result.outcome,
        };
      }
    }
    throw new ManagementError(
      'Conflict',
      `The registry '${name}' is being changed by too many writers at once; retry.`,
    );
  }

  /** The stored record and its settings; ResourceNotFound when absent. */
  async settings(name: string): Promise<{ record: RegistryRecord; settings: RegistrySettings }> {
    const record = await this.record(name);
    return { record, settings: settingsOf(record) };
  }

  /** PUT: creates the registry, or replaces its settable properties. */
  async put(
    name: string,
    body: RegistryBody,
    condition: WriteCondition = {},
  ): Promise<RegistryResult & { created: boolean; etag: string }> {
    const key = validateName(name);
    if (!body.sku)
      throw new ManagementError('InvalidRequestContent', "The 'sku' property is required.", {
        target: 'sku',
      });
    const sku = body.sku.name;
    if (await this.meta.getRegistry(key)) {
      const result = await this.mutate(
        key,
        (current) => {
          // A full PUT to a SKU without network features must not drop them silently: it is refused
          // exactly when the same body as a PATCH would be.
          if (current.sku !== sku) this.apply(structuredClone(current), body, current);
          const base: RegistrySettings = {
            ...defaultSettings(key, sku),
            credentials: current.credentials,
            privateEndpointConnections: current.privateEndpointConnections,
          };
          const applied = this.apply(base, body, current);
          if (applied.settings.adminUserEnabled && applied.settings.credentials.passwords.length === 0) {
            applied.settings.credentials = this.newCredentials(key);
          }
          return { ...applied, outcome: undefined };
        },
        condition,
      );
      return { ...result, created: false };
    }
    // If-Match names a current representation; there is none (RFC 9110 §13.1.1).
    if (condition.ifMatch !== undefined) throw preconditionFailed(key);
    const result = this.apply(defaultSettings(key, sku), body, undefined);
    if (result.settings.adminUserEnabled) result.settings.credentials = this.newCredentials(key);
    const record: RegistryRecord = {
      name: key,
      createdAt: new Date(),
      properties: { ...result.settings },
      version: 1,
    };
    if (!(await this.meta.createRegistry(record))) {
      throw new ManagementError('RegistryNameInUse', `The registry name '${name}' is already in use.`, {
        target: 'name',
      });
    }
    return {
      resource: this.resourceOf(record),
      etag: etagOf(record),
      warnings: result.warnings,
      created: true,
    };
  }

  /** PATCH: merges the given properties into the registry. */
  async patch(
    name: string,
    body: RegistryBody,
    condition: WriteCondition = {},
  ): Promise<Mutation<undefined>> {
    return this.mutate(
      name,
      (current, record) => {
        const result = this.apply(current, body, settingsOf(record));
        if (result.settings.adminUserEnabled && result.settings.credentials.passwords.length === 0) {
          result.settings.credentials = this.newCredentials(record.name);
        }
        return { ...result, outcome: undefined };
      },
      condition,
    );
  }

  /** Deletes a registry with all of its content. */
  async delete(name: string, condition: WriteCondition = {}): Promise<void> {
    const record = await this.record(name);
    if (record.name === this.defaultRegistry) {
      throw new ManagementError('Conflict', `The default registry '${record.name}' cannot be deleted.`);
    }
    if (condition.ifMatch !== undefined) {
      if (!matchesIfMatch(condition.ifMatch, etagOf(record))) throw preconditionFailed(record.name);
      if (!(await this.meta.deleteRegistry(record.name, record.version ?? 1)))
        throw preconditionFailed(record.name);
    } else {
      await this.meta.deleteRegistry(record.name);
    }
    await this.blobs.deleteRegistry(record.name);
    await this.identities.deleteRolesForRegistry(record.name);
    await this.audit.deleteDenialsForRegistry(record.name);
    await this.onDelete(record.name);
  }

  /** The admin user's credentials (ACR: only while the admin user is enabled). */
  async credentials(name: string) {
    const { settings } = await this.settings(name);
    if (!settings.adminUserEnabled) {
      throw new ManagementError(
        'AdminUserDisabled',
        `Run 'berth update -n ${name} --admin-enabled true' to enable admin first.`,
      );
    }
    return this.openCredentials(settings.credentials);
  }

  /** Replaces one of the admin user's two passwords. */
  async regenerateCredential(name: string, which: 'password' | 'password2') {
    const { settings } = await this.settings(name);
    if (!settings.adminUserEnabled) return this.credentials(name);
    const result = await this.mutate(name, (current) => {
      current.credentials.passwords = current.credentials.passwords.map((p) =>
        p.name === which ? { name: p.name, value: this.box.seal(generateSecret(24)) } : p,
      );
      return { settings: current, warnings: [], outcome: current.credentials };
    });
    return this.openCredentials(result.outcome);
  }

  /** The admin user's passwords in the clear (sign-in checks them). */
  adminPasswords(settings: RegistrySettings): string[] {
    return this.openCredentials(settings.credentials).passwords.map((p) => p.value);
  }

  /** Seals admin passwords that older versions stored in the clear (run once at start). */
  async sealLegacyCredentials(): Promise<void> {
    for (const record of await this.meta.listRegistries()) {
      if (settingsOf(record).credentials.passwords.every((p) => SecretBox.isSealed(p.value))) continue;
      await this.mutate(record.name, (current) => {
        current.credentials.passwords = current.credentials.passwords.map((p) =>
          SecretBox.isSealed(p.value) ? p : { name: p.name, value: this.box.seal(p.value) },
        );
        return { settings: current, warnings: [], outcome: undefined };
      });
    }
  }

  private openCredentials(credentials: RegistrySettings['credentials']): RegistrySettings['credentials'] {
    return {
      username: credentials.username,
      passwords: credentials.passwords.map((p) => ({
        name: p.name,
        value: SecretBox.isSealed(p.value) ? this.box.open(p.value) : p.value,
      })),
    };
  }

  private newCredentials(username: string): RegistrySettings['credentials'] {
    return {
      username,
      passwords: [
        { name: 'password', value: this.box.seal(generateSecret(24)) },
        { name: 'password2', value: this.box.seal(generateSecret(24)) },
      ],
    };
  }

  resourceOf(record: RegistryRecord): RegistryResource {
    return toResource(record, settingsOf(record), `${record.name}.${this.domain}`);
  }

  /** The storage a registry's SKU allows, in bytes (undefined for an unknown registry). */
  async storageQuota(name: string): Promise<number | undefined> {
    const record = await this.meta.getRegistry(name);
    return record && Math.floor(planOf(this.plans, settingsOf(record).sku).storageGiB * 2 ** 30);
  }

  /** What a registry uses against its SKU's limits, shaped like ACR's `listUsages`. */
  async usages(name: string) {
    const { record, settings } = await this.settings(name);
    const plan = planOf(this.plans, settings.sku);
    const { storageBytes } = await this.meta.registryUsage(record.name);
    return {
      value: [
        {
          name: 'Size',
          limit: Math.floor(plan.storageGiB * 2 ** 30),
          currentValue: storageBytes,
          unit: 'Bytes',
        },
        {
          name: 'IPRules',
          limit: plan.maxIpRules,
          currentValue: settings.networkRuleSet.ipRules.length,
          unit: 'Count',
        },
        {
          name: 'PrivateEndpointConnections',
          limit: plan.maxPrivateEndpoints,
          currentValue: settings.privateEndpointConnections.length,
          unit: 'Count',
        },
      ],
    };
  }

  /** The SKU plan of a registry's settings. */
  planFor(settings: RegistrySettings) {
    return planOf(this.plans, settings.sku);
  }

  private async record(name: string): Promise<RegistryRecord> {
    const record = NAME_RE.test(name) ? await this.meta.getRegistry(name.toLowerCase()) : undefined;
    if (!record)
      throw new ManagementError('ResourceNotFound', `The registry '${name}' was not found.`, {
        target: 'name',
      });
    return record;
  }

  /** Applies a body onto settings, normalising IP rules and enforcing the SKU's rules. */
  private apply(
    settings: RegistrySettings,
    body: RegistryBody,
    previous: RegistrySettings | undefined,
  ): { settings: RegistrySettings; warnings: string[] } {
    const warnings: string[] = [];
    const props = body.properties ?? {};
    if (body.sku) settings.sku = body.sku.name;
    if (props.adminUserEnabled !== undefined) settings.adminUserEnabled = props.adminUserEnabled;
    if (props.anonymousPullEnabled !== undefined) settings.anonymousPullEnabled = props.anonymousPullEnabled;
    if (props.publicNetworkAccess !== undefined) settings.publicNetworkAccess = props.publicNetworkAccess;
    if (props.networkRuleBypassOptions !== undefined)
      settings.networkRuleBypassOptions = props.networkRuleBypassOptions;
    if (props.networkRuleSet?.defaultAction !== undefined) {
      settings.networkRuleSet.defaultAction = props.networkRuleSet.defaultAction;
    }
    if (props.networkRuleSet?.ipRules !== undefined) {
      settings.networkRuleSet.ipRules = normaliseRules(props.networkRuleSet.ipRules, warnings);
    }
    if (props.networkRuleSet?.enforcement !== undefined) {
      if (props.networkRuleSet.enforcement === 'Enforced') delete settings.networkRuleSet.enforcement;
      else settings.networkRuleSet.enforcement = props.networkRuleSet.enforcement;
    }
    this.enforcePlan(settings, previous);
    return { settings, warnings };
  }

  /** Refuses settings the SKU does not allow: network features outside Premium, too many IP rules. */
  enforcePlan(settings: RegistrySettings, previous: RegistrySettings | undefined): void {
    const plan = planOf(this.plans, settings.sku);
    if (settings.anonymousPullEnabled && settings.sku === 'Basic')
      throw new ManagementError(
        'SkuNotSupported',
        'Anonymous pull is only supported for registries in the Standard and Premium SKUs.',
        { target: 'properties.anonymousPullEnabled' },
      );
    const uses = networkFeaturesIn(settings);
    if (!plan.networkRules && uses.length > 0) {
      const downgrade = previous && previous.sku !== settings.sku && networkFeaturesIn(previous).length > 0;
      throw new ManagementError(
        'SkuNotSupported',
        downgrade
          ? `Cannot change the SKU to ${settings.sku} while the registry uses network features; first ${uses.join(', ')}. ${NETWORK_RULES_PREMIUM_ONLY}`
          : NETWORK_RULES_PREMIUM_ONLY,
        { target: 'sku.name' },
      );
    }
    // Over the limit is refused only when the change adds rules (or the SKU changes), so a registry left
    // above a limit the operator lowered later can still be edited and brought back under it.
    const count = settings.networkRuleSet.ipRules.length;
    const grew = !previous || previous.sku !== settings.sku || count > previous.networkRuleSet.ipRules.length;
    if (count > plan.maxIpRules && grew) {
      throw new ManagementError(
        'TooManyIpRules',
        `A registry in the ${settings.sku} SKU can have at most ${plan.maxIpRules} IP rules; ${settings.networkRuleSet.ipRules.length} were given.`,
        { target: 'properties.networkRuleSet.ipRules' },
      );
    }
  }
}

/** Validates a registry name (ACR: 5-50 alphanumerics) and returns its stored, lower-case form. */
export function validateName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new ManagementError(
      'InvalidRegistryName',
      `Registry name '${name.slice(0, 60)}' is invalid: use 5-50 letters and digits only.`,
      { target: 'name' },
    );
  }
  return name.toLowerCase();
}

/** What the registry would have to remove before it can leave Premium, phrased as instructions. */
function networkFeaturesIn(settings: RegistrySettings): string[] {
  const uses: string[] = [];
  if (settings.networkRuleSet.ipRules.length > 0)
    uses.push(`remove the ${settings.networkRuleSet.ipRules.length} IP rule(s)`);
  if (settings.networkRuleSet.defaultAction === 'Deny') uses.push('set the default action to Allow');
  if (settings.publicNetworkAccess === 'Disabled') uses.push('enable public network access');
  if (settings.privateEndpointConnections.length > 0) {
    uses.push(`delete the ${settings.privateEndpointConnections.length} private endpoint connection(s)`);
  }
  return uses;
}
