// The management API's resources as the client sees them (docs/management-api.md). Fields the CLI
// does not interpret are kept as `unknown` so newer servers' additions pass through untouched.

export type SkuName = 'Basic' | 'Standard' | 'Premium';
export type DefaultAction = 'Allow' | 'Deny';
export type PublicNetworkAccess = 'Enabled' | 'Disabled';
export type NetworkRuleBypassOptions = 'AzureServices' | 'None';
export type ConnectionStatus = 'Pending' | 'Approved' | 'Rejected' | 'Disconnected';

/** One IP rule as the API stores it (ARM's wire name `value`). */
export interface IpRule {
  action: 'Allow';
  /** The address or range (`ipSet:<name>` for a rule naming an IP set). */
  value: string;
  /** The IP set the rule allows, instead of `value`. */
  ipSet?: string;
  /** `pull`: reads only; `all` (default): push and delete too. */
  actions?: 'pull' | 'all';
  /** ISO 8601 instant the rule stops matching. */
  expiresAt?: string;
  /** Read-only: the rule's expiry has passed. */
  expired?: boolean;
}

/** Answer of `POST .../networkRuleSet/ipRules` (add): canonical values, and the registry after it. */
export interface IpRulesAdded {
  added: string[];
  alreadyPresent: string[];
  updated?: string[];
  registry: Registry;
}

/** Answer of `DELETE .../networkRuleSet/ipRules` (remove). */
export interface IpRulesRemoved {
  removed: string[];
  notPresent: string[];
  registry: Registry;
}

export interface NetworkRuleSet {
  defaultAction: DefaultAction;
  ipRules: IpRule[];
  /** ReportOnly: refusals are logged (marked) and let through. */
  enforcement?: 'Enforced' | 'ReportOnly';
}

export interface PrivateEndpointConnection {
  id: string;
  name: string;
  type: string;
  properties: {
    privateEndpoint: { address: string };
    privateLinkServiceConnectionState: {
      status: ConnectionStatus;
      description?: string;
      actionsRequired?: string;
    };
    provisioningState?: string;
    [key: string]: unknown;
  };
}

/** The settable properties of a registry (PUT/PATCH bodies). */
export interface RegistrySettableProperties {
  adminUserEnabled?: boolean;
  anonymousPullEnabled?: boolean;
  publicNetworkAccess?: PublicNetworkAccess;
  networkRuleSet?: Partial<NetworkRuleSet>;
  networkRuleBypassOptions?: NetworkRuleBypassOptions;
}

export interface Registry {
  id: string;
  name: string;
  type: string;
  sku: { name: SkuName; tier?: string };
  properties: RegistrySettableProperties & {
    loginServer: string;
    creationDate: string;
    provisioningState?: string;
    privateEndpointConnections?: PrivateEndpointConnection[];
    [key: string]: unknown;
  };
}

/** Body of `PUT /api/registries/{name}`. */
export interface RegistryCreate {
  sku: { name: SkuName };
  properties?: RegistrySettableProperties;
}

/** Body of `PATCH /api/registries/{name}`: any subset; objects merge, arrays replace. */
export interface RegistryPatch {
  sku?: { name: SkuName };
  properties?: RegistrySettableProperties;
}

export interface RegistryEndpoints {
  loginServer: string;
  dataEndpoints: string[];
  privateEndpoints: { name: string; address: string; state: ConnectionStatus }[];
}

export interface RegistryCredentials {
  username: string;
  passwords: { name: 'password' | 'password2'; value: string }[];
}

export interface RepositoryInfo {
  registry: string;
  name: string;
  tagCount: number;
  manifestCount: number;
}

export interface TagInfo {
  name: string;
  digest: string;
}

export interface NetworkAccessCheck {
  ip: string;
  allowed: boolean;
  reason?: string;
  via?: string;
  matchedRule?: string;
  message?: string;
}

/** One address's denials for one reason in one minute: `time` is the latest, `count` how many. */
export interface NetworkDenial {
  time: string;
  firstSeen?: string;
  minute?: string;
  clientIp: string;
  method: string;
  path: string;
  reason: string;
  entry: unknown;
  count?: number;
  samples?: { method: string; path: string }[];
  reportOnly?: boolean;
}

export interface NetworkDenials {
  value: NetworkDenial[];
  countsByIp: { clientIp: string; count: number; lastSeen: string }[];
  /** Denials per minute and reason (report-only ones as `reportOnly:<reason>`), oldest first. */
  timeSeries?: { time: string; counts: Record<string, number> }[];
}

export interface WhoAmI {
  name: string;
  kind: string;
  roles: { registry: string; role: string }[];
}

/** Body of `PUT .../privateEndpointConnections/{pe}`. */
export interface PrivateEndpointConnectionPut {
  properties: {
    privateEndpoint?: { address: string };
    privateLinkServiceConnectionState?: { status: ConnectionStatus; description?: string };
  };
}

/** One line of `GET /api/registries/{name}/usages` (ACR's `listUsages`). */
export interface RegistryUsage {
  name: string;
  limit: number;
  currentValue: number;
  unit: 'Bytes' | 'Count';
}

/** A management resource whose shape the CLI passes through as it is (scope maps, tokens, roles). */
export type Resource = Record<string, unknown>;

/** `POST /api/registries/{name}/loginToken` (the shape of `az acr login --expose-token`). */
export interface LoginToken {
  loginServer: string;
  /** The address to hand to `docker login` (the listener's own for the default registry). */
  server: string;
  username: string;
  accessToken: string;
  expiresIn: number;
}

/** A named IP set (`/api/ipSets/{name}`). */
export interface IpSet {
  id: string;
  name: string;
  type: string;
  properties: { ranges: string[]; description: string; creationDate: string };
}
