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
export { compileIpRules, type IpMatcher } from './trie.js';
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
  compileNetworkPolicy,
  decideAccess,
  type AccessDecision,
  type AccessEntry,
  type DefaultAction,
  type DenialReason,
  type NetworkRuleBypassOptions,
  type PrivateEndpointConnectionState,
  type PublicNetworkAccess,
  type RegistryNetworkPolicy,
  type RegistryNetworkSettings,
} from './decide.js';
