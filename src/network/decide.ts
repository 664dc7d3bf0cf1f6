// The network guard's decision, modelled on Azure Container Registry: private endpoints are governed by
// their connection state alone, the public endpoint by publicNetworkAccess, defaultAction and ipRules,
// and trusted Azure services may bypass the public rules when the owner allows it. Beyond ACR: rules
// may expire or be limited to pulls, a registry may only report what it would refuse (ReportOnly),
// and an identity may carry its own address ranges, checked in addition to the registry's rules.

import { parseIpRule, type ClientAddress } from './address.js';
import { recompileIpRules, type IpMatcher } from './trie.js';

export type PublicNetworkAccess = 'Enabled' | 'Disabled';
export type DefaultAction = 'Allow' | 'Deny';
export type NetworkRuleBypassOptions = 'AzureServices' | 'None';
export type PrivateEndpointConnectionState = 'Pending' | 'Approved' | 'Rejected' | 'Disconnected';
/** `Enforced` refuses; `ReportOnly` lets through what it would refuse, and logs it as such. */
export type Enforcement = 'Enforced' | 'ReportOnly';
/** What a request does: `pull` reads (GET, HEAD); `push` is everything else (writes and deletes). */
export type NetworkAction = 'pull' | 'push';
/** What a rule allows: only pulls, or every action (the default). */
export type RuleActions = 'pull' | 'all';

/** A stored IP rule: an address or range, optionally limited to pulls and/or ending at an instant. */
export interface StoredIpRule {
  action?: 'Allow';
  /** The address or range; for a rule naming an IP set, `ipSet:<name>`. */
  value: string;
  /** The named IP set whose ranges the rule allows (instead of `value`'s). */
  ipSet?: string;
  actions?: RuleActions;
  /** ISO 8601 instant from which the rule no longer matches. */
  expiresAt?: string;
}

/** What the policy knows about a rule, for explanations. */
export interface RuleInfo {
  value: string;
  actions: RuleActions;
  expiresAt?: string;
  /** The IP set the range came from. */
  ipSet?: string;
}

/** A registry's network settings, compiled for per-request decisions. */
export interface RegistryNetworkPolicy {
  publicNetworkAccess: PublicNetworkAccess;
  defaultAction: DefaultAction;
  /** Rules in force, whatever they allow. */
  ipRules: IpMatcher;
  /** Rules in force that allow push too. */
  pushRules: IpMatcher;
  /** Canonical value → rule (actions, expiry), for the rules in force. */
  rules: ReadonlyMap<string, RuleInfo>;
  trustedServicesBypass: boolean;
  enforcement: Enforcement;
  /** When the next rule in force expires (ms since the epoch), Infinity if none: compile again then. */
  validUntil: number;
  /** Rules already expired when compiled (they match nothing). */
  expired: readonly RuleInfo[];
}

/** How the request reached the registry: the public listener, or a private endpoint's own listener. */
export type AccessEntry =
  | { kind: 'public' }
  | { kind: 'private'; connectionName: string; connectionState: PrivateEndpointConnectionState };

/** Who is asking, as far as the network decision cares (the caller verifies it). */
export interface NetworkIdentity {
  trustedService: boolean;
  /** The identity's own address ranges (e.g. an API key's): checked in addition to the registry's. */
  allowedNetworks?: IpMatcher;
  /** Named in explanations. */
  name?: string;
}

export type DenialReason =
  | 'publicNetworkAccessDisabled'
  | 'ipNotAllowed'
  | 'actionNotAllowed'
  | 'privateEndpointNotApproved'
  | 'identityNetworkNotAllowed';

export type AccessDecision =
  | {
      allowed: true;
      via: 'defaultAction' | 'ipRule' | 'trustedService' | 'privateEndpoint' | 'reportOnly';
      rule?: string;
      ruleActions?: RuleActions;
      ruleExpiresAt?: string;
      ruleIpSet?: string;
      /** Report-only mode: what enforcement would have answered. */
      wouldDeny?: { reason: DenialReason; message: string; rule?: string };
      /** The identity's own ranges that also admitted the address. */
      identityNetwork?: string;
    }
  | { allowed: false; reason: DenialReason; message: string; rule?: string; identity?: string };

/** The registry settings compileNetworkPolicy reads, as stored (rules as strings or objects). */
export interface RegistryNetworkSettings {
  publicNetworkAccess: PublicNetworkAccess;
  defaultAction: DefaultAction;
  ipRules: readonly (string | StoredIpRule)[];
  networkRuleBypassOptions: NetworkRuleBypassOptions;
  enforcement?: Enforcement;
}

const HINTS: Record<DenialReason, (entry: AccessEntry) => string> = {
  publicNetworkAccessDisabled: () =>
    "Public network access to this registry is disabled; ask the registry owner to update the registry's network rules.",
  ipNotAllowed: () => "Ask the registry owner to update the registry's network rules to allow this address.",
  actionNotAllowed: () =>
    "The registry's network rules allow this address to pull only; ask the registry owner for a rule that allows push.",
  privateEndpointNotApproved: (entry) =>
    `The private endpoint connection${entry.kind === 'private' ? ` '${entry.connectionName}'` : ''} is not approved; ask the registry owner to approve it.`,
  identityNetworkNotAllowed: () =>
    'The credential used is limited to other networks; use it from an address its owner allowed.',
};

function deny(
  reason: DenialReason,
  entry: AccessEntry,
  client: ClientAddress,
  extra: { rule?: string; identity?: string } = {},
): Extract<AccessDecision, { allowed: false }> {
  // The first sentence matches ACR's wording so existing tooling that greps for it keeps working.
  const decision: Extract<AccessDecision, { allowed: false }> = {
    allowed: false,
    reason,
    message: `client with IP '${client.text}' is not allowed access. ${HINTS[reason](entry)}`,
  };
  // Assigned, not spread: this runs per refused request, and spreads allocate.
  if (extra.rule !== undefined) decision.rule = extra.rule;
  if (extra.identity !== undefined) decision.identity = extra.identity;
  return decision;
}

function viaRule(policy: RegistryNetworkPolicy, value: string): AccessDecision {
  const decision: Extract<AccessDecision, { allowed: true }> = { allowed: true, via: 'ipRule', rule: value };
  // Most rules are plain: one map lookup, nothing else, on the hot path.
  const info = policy.rules.size === 0 ? undefined : policy.rules.get(value);
  if (info) {
    if (info.actions !== 'all') decision.ruleActions = info.actions;
    if (info.expiresAt !== undefined) decision.ruleExpiresAt = info.expiresAt;
    if (info.ipSet !== undefined) decision.ruleIpSet = info.ipSet;
  }
  return decision;
}

/** The registry's own answer, before the identity's conditions. */
function decideRegistry(
  policy: RegistryNetworkPolicy,
  entry: AccessEntry,
  client: ClientAddress,
  identity: NetworkIdentity | undefined,
  action: NetworkAction,
): AccessDecision {
  if (entry.kind === 'private') {
    // A private endpoint is its own network boundary: the public settings and the bypass do not apply.
    return entry.connectionState === 'Approved'
      ? { allowed: true, via: 'privateEndpoint' }
      : deny('privateEndpointNotApproved', entry, client);
  }
  const bypass = policy.trustedServicesBypass && identity?.trustedService === true;
  if (policy.publicNetworkAccess === 'Disabled') {
    return bypass
      ? { allowed: true, via: 'trustedService' }
      : deny('publicNetworkAccessDisabled', entry, client);
  }
  if (policy.defaultAction === 'Allow') return { allowed: true, via: 'defaultAction' };
  const rule = policy.ipRules.match(client);
  if (rule !== undefined && action === 'pull') return viaRule(policy, rule);
  if (rule !== undefined) {
    // Any rule that allows push admits a push, however specific a pull-only rule is.
    const pushRule = policy.pushRules.match(client);
    if (pushRule !== undefined) return viaRule(policy, pushRule);
  }
  if (bypass) return { allowed: true, via: 'trustedService' };
  const refusal =
    rule === undefined
      ? deny('ipNotAllowed', entry, client)
      : deny('actionNotAllowed', entry, client, { rule });
  if (policy.enforcement === 'ReportOnly') {
    const { allowed: _allowed, ...wouldDeny } = refusal;
    return { allowed: true, via: 'reportOnly', wouldDeny };
  }
  return refusal;
}

/**
 * Decides whether a request may proceed, before any credential is looked at (except the bypass and
 * identity conditions, which need an identity the caller has verified). `action` is what the request
 * does; rule expiry is the caller's to honour by compiling again at `policy.validUntil`.
 */
export function decideAccess(
  policy: RegistryNetworkPolicy,
  entry: AccessEntry,
  client: ClientAddress,
  identity?: NetworkIdentity,
  action: NetworkAction = 'pull',
): AccessDecision {
  const decision = decideRegistry(policy, entry, client, identity, action);
  if (!decision.allowed || identity?.allowedNetworks === undefined) return decision;
  // The identity's own ranges narrow access further; they never widen it.
  const range = identity.allowedNetworks.match(client);
  if (range === undefined) {
    return deny('identityNetworkNotAllowed', entry, client, identity.name ? { identity: identity.name } : {});
  }
  // Each decision is a fresh object, so it can carry the range without a copy.
  decision.identityNetwork = range;
  return decision;
}

/** The action of an HTTP method: GET and HEAD read (pull); everything else writes or deletes (push). */
export function actionOf(method: string): NetworkAction {
  return method === 'GET' || method === 'HEAD' ? 'pull' : 'push';
}

/**
 * Compiles stored settings once per change, so each request pays only for a trie lookup. Rules past
 * `now` are left out (and listed as expired); `validUntil` says when the next one expires. With the
 * `previous` policy of the same registry, rules appended since are compiled on their own.
 */
export function compileNetworkPolicy(
  settings: RegistryNetworkSettings,
  options: {
    now?: number;
    previous?: RegistryNetworkPolicy;
    /** The ranges of each IP set the rules name (a set that is missing allows nothing). */
    ipSets?: ReadonlyMap<string, readonly string[]>;
  } = {},
): RegistryNetworkPolicy {
  const now = options.now ?? Date.now();
  const rules = new Map<string, RuleInfo>();
  const all: string[] = [];
  const push: string[] = [];
  const expired: RuleInfo[] = [];
  const plain = new Set<string>();
  let validUntil = Infinity;
  for (const stored of settings.ipRules) {
    const rule: StoredIpRule = typeof stored === 'string' ? { value: stored } : stored;
    if (rule.ipSet !== undefined) {
      // A set's ranges are allowed as if listed here, each explained as coming from the set.
      const expiry = rule.expiresAt === undefined ? Infinity : Date.parse(rule.expiresAt);
      const base = { actions: rule.actions ?? 'all', ipSet: rule.ipSet } as const;
      const extra = rule.expiresAt !== undefined ? { expiresAt: rule.expiresAt } : {};
      if (expiry <= now) {
        expired.push({ value: rule.value, ...base, ...extra });
        continue;
      }
      validUntil = Math.min(validUntil, expiry);
      for (const range of options.ipSets?.get(rule.ipSet) ?? []) {
        const value = parseIpRule(range).value;
        const known = rules.get(value);
        if (!known || (known.actions === 'pull' && base.actions === 'all'))
          rules.set(value, { value, ...base, ...extra });
        all.push(value);
        if (base.actions === 'all') push.push(value);
      }
      continue;
    }
    all.push(rule.value);
    if (rule.actions === 'pull' || rule.expiresAt !== undefined) {
      // Only rules with attributes are described (the matcher reports canonical values, so these are
      // read again); a plain rule's description is the default, and 10,000 of them cost nothing here.
      const info: RuleInfo = {
        value: parseIpRule(rule.value).value,
        actions: rule.actions ?? 'all',
        ...(rule.expiresAt !== undefined ? { expiresAt: rule.expiresAt } : {}),
      };
      const expiry = rule.expiresAt === undefined ? Infinity : Date.parse(rule.expiresAt);
      if (expiry <= now) {
        all.pop();
        expired.push(info);
        continue;
      }
      validUntil = Math.min(validUntil, expiry);
      const known = rules.get(info.value);
      // One range listed twice (e.g. once pull-only, once expiring): it allows the most either does.
      if (!known || (known.actions === 'pull' && info.actions === 'all')) rules.set(info.value, info);
    } else {
      plain.add(rule.value);
    }
    if (rule.actions !== 'pull') push.push(rule.value);
  }
  // A range also listed without attributes allows everything, for good.
  for (const [value] of rules) if (plain.has(value)) rules.delete(value);
  return {
    publicNetworkAccess: settings.publicNetworkAccess,
    defaultAction: settings.defaultAction,
    ipRules: recompileIpRules(options.previous?.ipRules, all),
    pushRules: recompileIpRules(options.previous?.pushRules, push),
    rules,
    trustedServicesBypass: settings.networkRuleBypassOptions === 'AzureServices',
    enforcement: settings.enforcement ?? 'Enforced',
    validUntil,
    expired,
  };
}
