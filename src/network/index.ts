// The network layer's public API: pure functions only, so every caller passes in what it knows.

export {
  InvalidIpRuleError,
  formatAddress,
  normalizeIpRules,
  parseClientAddress,
  parseIpRule,
  type ClientAddress,
  type ParsedIpRule,
} from './address.js';
export { compileIpRules, recompileIpRules, type IpMatcher } from './trie.js';
export { resolveClientAddress, type ClientAddressInput } from './client-address.js';
export {
  PROXY_V2_SIGNATURE,
  encodeProxyV1,
  encodeProxyV2,
  parseProxyHeader,
  type ProxyEndpoint,
  type ProxyHeaderResult,
  type ProxyHeaderSpec,
} from './proxy-protocol.js';
export {
  actionOf,
  compileNetworkPolicy,
  decideAccess,
  type AccessDecision,
  type AccessEntry,
  type DefaultAction,
  type DenialReason,
  type Enforcement,
  type NetworkAction,
  type NetworkIdentity,
  type RuleActions,
  type RuleInfo,
  type StoredIpRule,
  type NetworkRuleBypassOptions,
  type PrivateEndpointConnectionState,
  type PublicNetworkAccess,
  type RegistryNetworkPolicy,
  type RegistryNetworkSettings,
} from './decide.js';
