// The network guard's decision, modelled on Azure Container Registry: private endpoints are governed by
// their connection state alone, the public endpoint by publicNetworkAccess, defaultAction and ipRules,
// and trusted Azure services may bypass the public rules when the owner allows it.

import type { ClientAddress } from './address.js';
import { compileIpRules, type IpMatcher } from './trie.js';

export type PublicNetworkAccess = 'Enabled' | 'Disabled';
export type DefaultAction = 'Allow' | 'Deny';
export type NetworkRuleBypassOptions = 'AzureServices' | 'None';
export type PrivateEndpointConnectionState = 'Pending' | 'Approved' | 'Rejected' | 'Disconnected';

/** A registry's network settings, compiled for per-request decisions. */
export interface RegistryNetworkPolicy {
  publicNetworkAccess: PublicNetworkAccess;
  defaultAction: DefaultAction;
  ipRules: IpMatcher;
  trustedServicesBypass: boolean;
}

/** How the request reached the registry: the public listener, or a private endpoint's own listener. */
export type AccessEntry =
  | { kind: 'public' }
  | { kind: 'private'; connectionName: string; connectionState: PrivateEndpointConnectionState };

export type DenialReason = 'publicNetworkAccessDisabled' | 'ipNotAllowed' | 'privateEndpointNotApproved';

export type AccessDecision =
  | { allowed: true; via: 'defaultAction' | 'ipRule' | 'trustedService' | 'privateEndpoint'; rule?: string }
  | { allowed: false; reason: DenialReason; message: string };

/** The registry settings compileNetworkPolicy reads, as stored (rules as strings or `{ value }`). */
export interface RegistryNetworkSettings {
  publicNetworkAccess: PublicNetworkAccess;
  defaultAction: DefaultAction;
  ipRules: readonly string[] | readonly { value: string }[];
  networkRuleBypassOptions: NetworkRuleBypassOptions;
}

const HINTS: Record<DenialReason, (entry: AccessEntry) => string> = {
  publicNetworkAccessDisabled: () =>
    "Public network access to this registry is disabled; ask the registry owner to update the registry's network rules.",
  ipNotAllowed: () => "Ask the registry owner to update the registry's network rules to allow this address.",
  privateEndpointNotApproved: (entry) =>
    `The private endpoint connection${entry.kind === 'private' ? ` '${entry.connectionName}'` : ''} is not approved; ask the registry owner to approve it.`,
};

function deny(reason: DenialReason, entry: AccessEntry, client: ClientAddress): AccessDecision {
  // The first sentence matches ACR's wording so existing tooling that greps for it keeps working.
  return {
    allowed: false,
    reason,
    message: `client with IP '${client.text}' is not allowed access. ${HINTS[reason](entry)}`,
  };
}

/** Decides whether a request may proceed, before any credential is looked at (except the bypass). */
export function decideAccess(
  policy: RegistryNetworkPolicy,
  entry: AccessEntry,
  client: ClientAddress,
  identity?: { trustedService: boolean },
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
  if (rule !== undefined) return { allowed: true, via: 'ipRule', rule };
  return bypass ? { allowed: true, via: 'trustedService' } : deny('ipNotAllowed', entry, client);
}

/** Compiles stored settings once per change, so each request pays only for a trie lookup. */
export function compileNetworkPolicy(settings: RegistryNetworkSettings): RegistryNetworkPolicy {
  const values = settings.ipRules.map((rule: string | { value: string }) =>
    typeof rule === 'string' ? rule : rule.value,
  );
  return {
    publicNetworkAccess: settings.publicNetworkAccess,
    defaultAction: settings.defaultAction,
    ipRules: compileIpRules(values),
    trustedServicesBypass: settings.networkRuleBypassOptions === 'AzureServices',
  };
}
