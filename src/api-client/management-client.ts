import { ApiError, connectionErrorFrom } from './errors.js';
import type {
  LoginToken,
  IpRule,
  IpSet,
  IpRulesAdded,
  IpRulesRemoved,
  NetworkAccessCheck,
  NetworkDenials,
  PrivateEndpointConnection,
  PrivateEndpointConnectionPut,
  Registry,
  RegistryCreate,
  RegistryCredentials,
  RegistryEndpoints,
  RegistryPatch,
  RegistryUsage,
  RepositoryInfo,
  Resource,
  TagInfo,
  WhoAmI,
} from './types.js';

/** How the client proves who it is: an API key (Bearer), a user account (Basic), or nothing. */
export type Credentials =
  | { kind: 'apiKey'; apiKey: string }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'none' };

export interface ManagementClientOptions {
  /** Base URL of the management API, e.g. `http://127.0.0.1:5080`. */
  server: string;
  credentials: Credentials;
  /** Injected for tests; the global `fetch` otherwise. */
  fetch?: typeof fetch;
  timeoutMs?: number;
  userAgent?: string;
  /** Called with each `Warning` the server sends (e.g. a rule it normalised). */
  onWarning?: (message: string) => void;
}

type Query = Record<string, string | number | undefined>;

/** A typed client for Berth's management REST API (`/api/...`). Throws `ApiError` or `ConnectionError`. */
export class ManagementClient {
  readonly server: string;
  private readonly credentials: Credentials;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;
  private readonly userAgent: string;
  private readonly onWarning: ((message: string) => void) | undefined;

  constructor(options: ManagementClientOptions) {
    this.server = options.server.replace(/\/+$/, '');
    this.credentials = options.credentials;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.userAgent = options.userAgent ?? 'berth-cli';
    this.onWarning = options.onWarning;
  }

  /** `GET /api/whoami` */
  whoami(): Promise<WhoAmI> {
    return this.request('GET', '/api/whoami');
  }

  /** `GET /api/registries` → the registries' list (unwrapped from `value`). */
  async listRegistries(): Promise<Registry[]> {
    return (await this.request<{ value: Registry[] }>('GET', '/api/registries')).value;
  }

  /** `GET /api/registries/{name}` */
  getRegistry(name: string): Promise<Registry> {
    return this.request('GET', registryPath(name));
  }

  /** `PUT /api/registries/{name}` (create or replace) */
  putRegistry(name: string, body: RegistryCreate): Promise<Registry> {
    return this.request('PUT', registryPath(name), { body });
  }

  /** `PATCH /api/registries/{name}`: only the given fields change. */
  patchRegistry(name: string, body: RegistryPatch): Promise<Registry> {
    return this.request('PATCH', registryPath(name), { body });
  }

  /** `DELETE /api/registries/{name}` */
  async deleteRegistry(name: string): Promise<void> {
    await this.request('DELETE', registryPath(name));
  }

  /** `GET /api/registries/{name}/endpoints` */
  getEndpoints(name: string): Promise<RegistryEndpoints> {
    return this.request('GET', `${registryPath(name)}/endpoints`);
  }

  /** `GET /api/registries/{name}/usages` */
  getUsages(name: string): Promise<{ value: RegistryUsage[] }> {
    return this.request('GET', `${registryPath(name)}/usages`);
  }

  /** `POST /api/registries/{name}/listCredentials` */
  listCredentials(name: string): Promise<RegistryCredentials> {
    return this.request('POST', `${registryPath(name)}/listCredentials`);
  }

  /** `POST /api/registries/{name}/regenerateCredential` */
  regenerateCredential(name: string, passwordName: 'password' | 'password2'): Promise<RegistryCredentials> {
    return this.request('POST', `${registryPath(name)}/regenerateCredential`, {
      body: { name: passwordName },
    });
  }

  /** One page of `GET /api/registries/{name}/repositories?n=&last=`. */
  async listRepositories(name: string, page: { n?: number; last?: string } = {}): Promise<string[]> {
    const query: Query = { n: page.n, last: page.last };
    return (await this.request<{ value: string[] }>('GET', `${registryPath(name)}/repositories`, { query }))
      .value;
  }

  /** `GET /api/registries/{name}/repositories/{repo}` */
  getRepository(name: string, repository: string): Promise<RepositoryInfo> {
    return this.request('GET', repositoryPath(name, repository));
  }

  /** `DELETE /api/registries/{name}/repositories/{repo}` */
  async deleteRepository(name: string, repository: string): Promise<void> {
    await this.request('DELETE', repositoryPath(name, repository));
  }

  /** `GET /api/registries/{name}/repositories/{repo}/tags` (unwrapped). */
  async listTags(name: string, repository: string): Promise<TagInfo[]> {
    return (await this.request<{ value: TagInfo[] }>('GET', `${repositoryPath(name, repository)}/tags`))
      .value;
  }

  /** `DELETE /api/registries/{name}/repositories/{repo}/tags/{tag}` */
  async deleteTag(name: string, repository: string, tag: string): Promise<void> {
    await this.request('DELETE', `${repositoryPath(name, repository)}/tags/${encodeURIComponent(tag)}`);
  }

  /** `POST /api/registries/{name}/gcRuns`: garbage collection now (or, dry, what it would remove). */
  runGc(name: string, dryRun: boolean): Promise<Record<string, unknown>> {
    return this.request('POST', `${registryPath(name)}/gcRuns`, { body: { dryRun } });
  }

  /** `GET /api/registries/{name}/gcRuns` */
  listGcRuns(name: string): Promise<{ value: Record<string, unknown>[]; totalBytesReclaimed: number }> {
    return this.request('GET', `${registryPath(name)}/gcRuns`);
  }

  /** `GET /api/registries/{name}/retentionPolicy` */
  getRetentionPolicy(name: string): Promise<Record<string, unknown>> {
    return this.request('GET', `${registryPath(name)}/retentionPolicy`);
  }

  /** `PATCH /api/registries/{name}/retentionPolicy` */
  updateRetentionPolicy(
    name: string,
    body: { days?: number; status?: string; type?: string },
  ): Promise<Record<string, unknown>> {
    return this.request('PATCH', `${registryPath(name)}/retentionPolicy`, { body });
  }

  /** `GET /api/registries/{name}/webhooks` (unwrapped). */
  async listWebhooks(registry: string): Promise<Record<string, unknown>[]> {
    return (
      await this.request<{ value: Record<string, unknown>[] }>('GET', `${registryPath(registry)}/webhooks`)
    ).value;
  }

  /** `GET|PUT|PATCH|DELETE /api/registries/{name}/webhooks/{webhook}`. */
  webhook(
    method: 'GET' | 'PUT' | 'PATCH' | 'DELETE',
    registry: string,
    name: string,
    properties?: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    return this.request(method, webhookPath(registry, name), properties ? { body: { properties } } : {});
  }

  /** `POST /api/registries/{name}/webhooks/{webhook}/ping|listEvents`. */
  webhookAction(
    registry: string,
    name: string,
    action: 'ping' | 'listEvents',
  ): Promise<Record<string, unknown>> {
    return this.request('POST', `${webhookPath(registry, name)}/${action}`);
  }

  /** `POST /api/registries/{name}/checkNetworkAccess` */
  checkNetworkAccess(name: string, ip: string, action?: 'pull' | 'push'): Promise<NetworkAccessCheck> {
    return this.request('POST', `${registryPath(name)}/checkNetworkAccess`, {
      body: { ip, ...(action ? { action } : {}) },
    });
  }

  /** `POST /api/registries/{name}/networkRuleSet/ipRules`: adds rules atomically (present ones are reported). */
  addIpRules(name: string, ipRules: IpRule[]): Promise<IpRulesAdded> {
    return this.request('POST', `${registryPath(name)}/networkRuleSet/ipRules`, { body: { ipRules } });
  }

  /** `DELETE /api/registries/{name}/networkRuleSet/ipRules`: removes rules atomically (absent ones are reported). */
  removeIpRules(name: string, values: string[]): Promise<IpRulesRemoved> {
    const ipRules = values.map((value) => ({ value }));
    return this.request('DELETE', `${registryPath(name)}/networkRuleSet/ipRules`, { body: { ipRules } });
  }

  /** `GET /api/ipSets` (unwrapped). */
  async listIpSets(): Promise<IpSet[]> {
    return (await this.request<{ value: IpSet[] }>('GET', '/api/ipSets')).value;
  }

  /** `GET /api/ipSets/{name}` */
  getIpSet(name: string): Promise<IpSet> {
    return this.request('GET', `/api/ipSets/${encodeURIComponent(name)}`);
  }

  /** `PUT /api/ipSets/{name}`: creates or replaces the set. */
  putIpSet(name: string, body: { ranges: string[]; description?: string }): Promise<IpSet> {
    return this.request('PUT', `/api/ipSets/${encodeURIComponent(name)}`, { body });
  }

  /** `DELETE /api/ipSets/{name}` */
  async deleteIpSet(name: string): Promise<void> {
    await this.request('DELETE', `/api/ipSets/${encodeURIComponent(name)}`);
  }

  /** `GET /api/registries/{name}/networkDenials?since=&ip=&limit=` */
  listNetworkDenials(
    name: string,
    filter: { since?: string; ip?: string; limit?: number } = {},
  ): Promise<NetworkDenials> {
    return this.request('GET', `${registryPath(name)}/networkDenials`, { query: { ...filter } });
  }

  /** `GET /api/registries/{name}/privateEndpointConnections` (unwrapped). */
  async listPrivateEndpointConnections(name: string): Promise<PrivateEndpointConnection[]> {
    const path = `${registryPath(name)}/privateEndpointConnections`;
    return (await this.request<{ value: PrivateEndpointConnection[] }>('GET', path)).value;
  }

  /** `GET /api/registries/{name}/privateEndpointConnections/{pe}` */
  getPrivateEndpointConnection(name: string, connection: string): Promise<PrivateEndpointConnection> {
    return this.request('GET', connectionPath(name, connection));
  }

  /** `PUT /api/registries/{name}/privateEndpointConnections/{pe}`: create, or change the state. */
  putPrivateEndpointConnection(
    name: string,
    connection: string,
    body: PrivateEndpointConnectionPut,
  ): Promise<PrivateEndpointConnection> {
    return this.request('PUT', connectionPath(name, connection), { body });
  }

  /** `DELETE /api/registries/{name}/privateEndpointConnections/{pe}` */
  async deletePrivateEndpointConnection(name: string, connection: string): Promise<void> {
    await this.request('DELETE', connectionPath(name, connection));
  }

  /** `PUT /api/registries/{name}/roleAssignments/{principal}` */
  assignRole(name: string, principal: string, role: string): Promise<Resource> {
    return this.request('PUT', `${registryPath(name)}/roleAssignments/${encodeURIComponent(principal)}`, {
      body: { role },
    });
  }

  /** `GET /api/registries/{name}/roleAssignments` (unwrapped). */
  async listRoleAssignments(name: string): Promise<Resource[]> {
    return (await this.request<{ value: Resource[] }>('GET', `${registryPath(name)}/roleAssignments`)).value;
  }

  /** `DELETE /api/registries/{name}/roleAssignments/{principal}?role=` */
  async removeRole(name: string, principal: string, role: string): Promise<void> {
    await this.request('DELETE', `${registryPath(name)}/roleAssignments/${encodeURIComponent(principal)}`, {
      query: { role },
    });
  }

  /** `GET /api/registries/{name}/scopeMaps` (unwrapped). */
  async listScopeMaps(name: string): Promise<Resource[]> {
    return (await this.request<{ value: Resource[] }>('GET', `${registryPath(name)}/scopeMaps`)).value;
  }

  /** `GET /api/registries/{name}/scopeMaps/{map}` */
  getScopeMap(name: string, map: string): Promise<Resource> {
    return this.request('GET', childPath(name, 'scopeMaps', map));
  }

  /** `PUT` (create or replace) or `PATCH` (update) a scope map. */
  putScopeMap(
    name: string,
    map: string,
    properties: { description?: string; actions?: string[] },
    method: 'PUT' | 'PATCH' = 'PUT',
  ): Promise<Resource> {
    return this.request(method, childPath(name, 'scopeMaps', map), { body: { properties } });
  }

  /** `DELETE /api/registries/{name}/scopeMaps/{map}` */
  async deleteScopeMap(name: string, map: string): Promise<void> {
    await this.request('DELETE', childPath(name, 'scopeMaps', map));
  }

  /** `GET /api/registries/{name}/tokens` (unwrapped). */
  async listTokens(name: string): Promise<Resource[]> {
    return (await this.request<{ value: Resource[] }>('GET', `${registryPath(name)}/tokens`)).value;
  }

  /** `GET /api/registries/{name}/tokens/{token}` */
  getToken(name: string, token: string): Promise<Resource> {
    return this.request('GET', childPath(name, 'tokens', token));
  }

  /** `PUT` (create or replace) or `PATCH` (update) a token. */
  putToken(
    name: string,
    token: string,
    properties: { scopeMapId?: string; status?: 'enabled' | 'disabled'; allowedIpRanges?: string[] },
    method: 'PUT' | 'PATCH' = 'PUT',
  ): Promise<Resource> {
    return this.request(method, childPath(name, 'tokens', token), { body: { properties } });
  }

  /** `DELETE /api/registries/{name}/tokens/{token}` */
  async deleteToken(name: string, token: string): Promise<void> {
    await this.request('DELETE', childPath(name, 'tokens', token));
  }

  /** `POST /api/registries/{name}/generateCredentials`: new token password(s), shown once. */
  generateCredentials(
    name: string,
    body: { tokenId: string; name?: 'password1' | 'password2'; expiry?: string },
  ): Promise<Resource> {
    return this.request('POST', `${registryPath(name)}/generateCredentials`, { body });
  }

  /** `DELETE /api/registries/{name}/tokens/{token}/passwords/{password}` */
  deleteTokenPassword(name: string, token: string, password: 'password1' | 'password2'): Promise<Resource> {
    return this.request('DELETE', `${childPath(name, 'tokens', token)}/passwords/${password}`);
  }

  /** `GET /api/registries/{name}/signIns` (or `/api/signIns` without a registry). */
  listSignIns(name: string | undefined, filter: { since?: string; result?: string; top?: number } = {}) {
    const path = name === undefined ? '/api/signIns' : `${registryPath(name)}/signIns`;
    return this.request<{ value: Resource[] }>('GET', path, { query: { ...filter } });
  }

  /** `POST /api/registries/{name}/loginToken`: a short-lived token for `docker login`. */
  loginToken(name: string): Promise<LoginToken> {
    return this.request('POST', `${registryPath(name)}/loginToken`);
  }

  /** Sends one request and decodes the JSON answer; non-2xx answers become `ApiError`. */
  async request<T>(
    method: string,
    path: string,
    options: { body?: unknown; query?: Query } = {},
  ): Promise<T> {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent };
    const auth = authorizationHeader(this.credentials);
    if (auth) headers.authorization = auth;
    if (options.body !== undefined) headers['content-type'] = 'application/json';

    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw connectionErrorFrom(url.href, error);
    }
    const text = await response.text();
    const warning = response.headers.get('warning');
    if (warning && this.onWarning) for (const message of parseWarnings(warning)) this.onWarning(message);
    if (!response.ok) throw apiErrorFrom(response, text);
    if (response.status === 204 || text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(
        response.status,
        'InvalidResponse',
        `the server answered ${method} ${path} with invalid JSON`,
      );
    }
  }
}

/** The `Authorization` header value for the given credentials, if any. */
export function authorizationHeader(credentials: Credentials): string | undefined {
  switch (credentials.kind) {
    case 'apiKey':
      return `Bearer ${credentials.apiKey}`;
    case 'basic':
      return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    case 'none':
      return undefined;
  }
}

/** The texts of an RFC 9111 `Warning` header: `299 agent "text", 299 agent "text"`. */
export function parseWarnings(header: string): string[] {
  return [...header.matchAll(/\d{3} \S+ "((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'));
}

function apiErrorFrom(response: Response, text: string): ApiError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const error = (
    body as { error?: { code?: unknown; message?: unknown; target?: unknown; details?: unknown } }
  )?.error;
  if (error && typeof error.code === 'string' && typeof error.message === 'string') {
    return new ApiError(response.status, error.code, error.message, {
      ...(typeof error.target === 'string' ? { target: error.target } : {}),
      ...(Array.isArray(error.details) ? { details: error.details as ApiError['details'] } : {}),
    });
  }
  const code = response.status === 404 ? 'ResourceNotFound' : `Http${response.status}`;
  const summary = text.trim().slice(0, 200);
  return new ApiError(
    response.status,
    code,
    `the server answered ${response.status} ${response.statusText}${summary ? `: ${summary}` : ''}`,
  );
}

function registryPath(name: string): string {
  return `/api/registries/${encodeURIComponent(name)}`;
}

// Repository names contain '/', so they travel as one encoded path segment.
function repositoryPath(name: string, repository: string): string {
  return `${registryPath(name)}/repositories/${encodeURIComponent(repository)}`;
}

function childPath(name: string, kind: 'scopeMaps' | 'tokens', child: string): string {
  return `${registryPath(name)}/${kind}/${encodeURIComponent(child)}`;
}

function connectionPath(name: string, connection: string): string {
  return `${registryPath(name)}/privateEndpointConnections/${encodeURIComponent(connection)}`;
}

function webhookPath(registry: string, name: string): string {
  return `${registryPath(registry)}/webhooks/${encodeURIComponent(name)}`;
}
