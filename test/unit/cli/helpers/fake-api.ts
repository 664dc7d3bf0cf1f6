// A small in-memory stand-in for Berth's management API (docs/management-api.md), on a real socket,
// so CLI tests exercise real HTTP (paths, encoding, status codes) without the whole server. It also
// records every request so tests can assert exactly what the CLI sent (e.g. PATCH bodies).

import { isIP } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

export const FAKE_USER = 'admin';
export const FAKE_PASSWORD = 'fake-password';
export const FAKE_API_KEY = 'bk_fake_key';

export interface RecordedRequest {
  method: string;
  url: string;
  body: unknown;
  authorization: string | undefined;
}

interface FakeRegistry {
  name: string;
  sku: string;
  creationDate: string;
  adminUserEnabled: boolean;
  anonymousPullEnabled: boolean;
  publicNetworkAccess: string;
  defaultAction: string;
  ipRules: { action: string; value: string }[];
  bypass: string;
  connections: Map<string, { address: string; status: string; description: string }>;
  repositories: Map<string, { name: string; digest: string }[]>;
  passwords: { name: string; value: string }[];
}

export interface FakeApi {
  url: string;
  requests: RecordedRequest[];
  registries: Map<string, FakeRegistry>;
  /** Adds a registry directly (bypassing the API), e.g. with repositories. */
  seed(name: string, extra?: Partial<FakeRegistry>): FakeRegistry;
  close(): Promise<void>;
}

/** Every body the CLI sends, read loosely as a lenient server would. */
interface LooseBody {
  sku?: { name?: string };
  properties?: {
    privateEndpoint?: { address?: string };
    privateLinkServiceConnectionState?: { status: string; description?: string };
    [key: string]: unknown;
  };
  name?: string;
  ip?: string;
  ipRules?: { action?: string; value: string }[];
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Starts the fake on an ephemeral loopback port. */
export async function startFakeApi(options: { dataEndpoint?: string } = {}): Promise<FakeApi> {
  const app: FastifyInstance = Fastify();
  const requests: RecordedRequest[] = [];
  const registries = new Map<string, FakeRegistry>();
  let counter = 0;

  const newRegistry = (name: string, sku: string): FakeRegistry => ({
    name,
    sku,
    creationDate: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)).toISOString(),
    adminUserEnabled: false,
    anonymousPullEnabled: false,
    publicNetworkAccess: 'Enabled',
    defaultAction: 'Allow',
    ipRules: [],
    bypass: 'AzureServices',
    connections: new Map(),
    repositories: new Map(),
    passwords: [
      { name: 'password', value: 'p1-initial' },
      { name: 'password2', value: 'p2-initial' },
    ],
  });

  const resource = (r: FakeRegistry) => ({
    id: `/registries/${r.name}`,
    name: r.name,
    type: 'Berth/registries',
    sku: { name: r.sku, tier: r.sku },
    properties: {
      loginServer: `${r.name}.localhost`,
      creationDate: r.creationDate,
      provisioningState: 'Succeeded',
      adminUserEnabled: r.adminUserEnabled,
      anonymousPullEnabled: r.anonymousPullEnabled,
      publicNetworkAccess: r.publicNetworkAccess,
      networkRuleSet: { defaultAction: r.defaultAction, ipRules: r.ipRules },
      networkRuleBypassOptions: r.bypass,
      privateEndpointConnections: [...r.connections.keys()].map((pe) => connection(r, pe)),
    },
  });

  const connection = (r: FakeRegistry, name: string) => {
    const c = r.connections.get(name)!;
    return {
      id: `/registries/${r.name}/privateEndpointConnections/${name}`,
      name,
      type: 'Berth/registries/privateEndpointConnections',
      properties: {
        privateEndpoint: { address: c.address },
        privateLinkServiceConnectionState: {
          status: c.status,
          description: c.description,
          actionsRequired: 'None',
        },
        provisioningState: 'Succeeded',
      },
    };
  };

  const get = (name: string) => {
    const r = registries.get(name.toLowerCase());
    if (!r) throw new HttpError(404, 'ResourceNotFound', `The registry '${name}' was not found.`);
    return r;
  };

  const applyProperties = (r: FakeRegistry, properties: Record<string, unknown> | undefined) => {
    for (const [key, value] of Object.entries(properties ?? {})) {
      if (key === 'adminUserEnabled') r.adminUserEnabled = value as boolean;
      else if (key === 'anonymousPullEnabled') r.anonymousPullEnabled = value as boolean;
      else if (key === 'publicNetworkAccess') r.publicNetworkAccess = value as string;
      else if (key === 'networkRuleBypassOptions') r.bypass = value as string;
      else if (key === 'networkRuleSet') {
        const set = value as { defaultAction?: string; ipRules?: { action: string; value: string }[] };
        if (set.defaultAction) r.defaultAction = set.defaultAction;
        if (set.ipRules) {
          for (const rule of set.ipRules) {
            if (isIP(rule.value.split('/')[0]!) === 0) {
              throw new HttpError(
                400,
                'InvalidNetworkRule',
                `'${rule.value}' is not a valid IP address or CIDR range`,
              );
            }
          }
          r.ipRules = set.ipRules;
        }
      } else
        throw new HttpError(400, 'InvalidRequestContent', `Unknown property '${key}' in body.properties.`);
    }
    const networked =
      r.defaultAction === 'Deny' || r.ipRules.length > 0 || r.publicNetworkAccess === 'Disabled';
    if (networked && r.sku !== 'Premium') {
      throw new HttpError(
        400,
        'SkuNotSupported',
        'Network rules are only supported for registries in the Premium SKU.',
      );
    }
  };

  app.addHook('onRequest', async (request) => {
    const auth = request.headers.authorization;
    const basic = `Basic ${Buffer.from(`${FAKE_USER}:${FAKE_PASSWORD}`).toString('base64')}`;
    if (auth !== basic && auth !== `Bearer ${FAKE_API_KEY}`) {
      throw new HttpError(
        401,
        'AuthenticationFailed',
        'Authentication failed: missing or invalid credentials.',
      );
    }
  });
  app.addHook('preHandler', async (request) => {
    requests.push({
      method: request.method,
      url: request.url,
      body: request.body,
      authorization: request.headers.authorization,
    });
  });
  app.setErrorHandler((error: Error & { status?: number; code?: string }, _request, reply) => {
    if (error instanceof HttpError) {
      return reply.code(error.status).send({ error: { code: error.code, message: error.message } });
    }
    return reply.code(500).send({ error: { code: 'InternalServerError', message: error.message } });
  });

  type R = FastifyRequest<{
    Params: Record<string, string>;
    Querystring: Record<string, string>;
    Body: LooseBody;
  }>;
  const route = (
    method: 'GET' | 'PUT' | 'PATCH' | 'POST' | 'DELETE',
    url: string,
    handler: (r: R, reply: FastifyReply) => unknown,
  ) => app.route({ method, url, handler: async (request, reply) => handler(request as R, reply) });

  route('GET', '/api/whoami', () => ({
    name: FAKE_USER,
    kind: 'user',
    roles: [{ registry: '*', role: 'Owner' }],
  }));
  route('GET', '/api/registries', () => ({ value: [...registries.values()].map(resource) }));
  route('GET', '/api/registries/:name', (r) => resource(get(r.params.name!)));
  route('PUT', '/api/registries/:name', (r, reply) => {
    const name = r.params.name!;
    if (!/^[a-zA-Z0-9]{5,50}$/.test(name))
      throw new HttpError(400, 'InvalidRegistryName', `'${name}' is not a valid registry name.`);
    const existed = registries.has(name);
    const reg = newRegistry(name, r.body?.sku?.name ?? 'Basic');
    applyProperties(reg, r.body?.properties);
    registries.set(name, reg);
    return reply.code(existed ? 200 : 201).send(resource(reg));
  });
  route('PATCH', '/api/registries/:name', (r) => {
    const reg = get(r.params.name!);
    const copy = { ...reg, ipRules: [...reg.ipRules] };
    if (r.body?.sku?.name) copy.sku = r.body.sku.name;
    applyProperties(copy, r.body?.properties);
    Object.assign(reg, copy);
    return resource(reg);
  });
  route('DELETE', '/api/registries/:name', (r, reply) => {
    get(r.params.name!);
    registries.delete(r.params.name!);
    return reply.code(204).send();
  });
  // The atomic rule operations, as the real server answers them (canonical values are not computed here).
  route('POST', '/api/registries/:name/networkRuleSet/ipRules', (r, reply) => {
    const reg = get(r.params.name!);
    const copy = { ...reg, ipRules: [...reg.ipRules] };
    const added: string[] = [];
    const alreadyPresent: string[] = [];
    for (const rule of r.body?.ipRules ?? []) {
      if (copy.ipRules.some((x) => x.value === rule.value)) alreadyPresent.push(rule.value);
      else {
        added.push(rule.value);
        copy.ipRules.push({ action: 'Allow', value: rule.value });
      }
    }
    applyProperties(copy, { networkRuleSet: { ipRules: copy.ipRules } });
    Object.assign(reg, copy);
    if (alreadyPresent.length > 0)
      reply.header(
        'Warning',
        alreadyPresent.map((v) => `299 berth "IP rule '${v}' is already present."`).join(', '),
      );
    return { added, alreadyPresent, registry: resource(reg) };
  });
  route('DELETE', '/api/registries/:name/networkRuleSet/ipRules', (r) => {
    const reg = get(r.params.name!);
    const values = (r.body?.ipRules ?? []).map((rule) => rule.value);
    const removed = values.filter((v) => reg.ipRules.some((x) => x.value === v));
    const notPresent = values.filter((v) => !removed.includes(v));
    reg.ipRules = reg.ipRules.filter((x) => !values.includes(x.value));
    return { removed, notPresent, registry: resource(reg) };
  });
  route('GET', '/api/registries/:name/endpoints', (r) => {
    const reg = get(r.params.name!);
    return {
      loginServer: `${reg.name}.localhost`,
      dataEndpoints: [options.dataEndpoint ?? 'http://127.0.0.1:5000'],
      privateEndpoints: [...reg.connections].map(([name, c]) => ({
        name,
        address: c.address,
        state: c.status,
      })),
    };
  });
  const credentials = (reg: FakeRegistry) => {
    if (!reg.adminUserEnabled) throw new HttpError(400, 'AdminUserDisabled', 'The admin user is disabled.');
    return { username: reg.name, passwords: reg.passwords };
  };
  route('POST', '/api/registries/:name/listCredentials', (r) => credentials(get(r.params.name!)));
  route('POST', '/api/registries/:name/regenerateCredential', (r) => {
    const reg = get(r.params.name!);
    const entry = reg.passwords.find((p) => p.name === r.body?.name);
    if (!entry) throw new HttpError(400, 'InvalidRequestContent', 'body.name must be password or password2.');
    entry.value = `regenerated-${++counter}`;
    return credentials(reg);
  });
  route('GET', '/api/registries/:name/repositories', (r) => {
    const names = [...get(r.params.name!).repositories.keys()].sort();
    const after = r.query.last ? names.filter((n) => n > r.query.last!) : names;
    return { value: after.slice(0, Number(r.query.n ?? 1000)) };
  });
  const repo = (r: R) => {
    const tags = get(r.params.name!).repositories.get(r.params.repository!);
    if (!tags)
      throw new HttpError(404, 'ResourceNotFound', `Repository '${r.params.repository}' was not found.`);
    return tags;
  };
  route('GET', '/api/registries/:name/repositories/:repository', (r) => {
    const tags = repo(r);
    return {
      registry: r.params.name,
      name: r.params.repository,
      tagCount: tags.length,
      manifestCount: new Set(tags.map((t) => t.digest)).size,
    };
  });
  route('DELETE', '/api/registries/:name/repositories/:repository', (r, reply) => {
    repo(r);
    get(r.params.name!).repositories.delete(r.params.repository!);
    return reply.code(204).send();
  });
  route('GET', '/api/registries/:name/repositories/:repository/tags', (r) => ({ value: repo(r) }));
  route('DELETE', '/api/registries/:name/repositories/:repository/tags/:tag', (r, reply) => {
    const tags = repo(r);
    const index = tags.findIndex((t) => t.name === r.params.tag);
    if (index < 0) throw new HttpError(404, 'ResourceNotFound', `Tag '${r.params.tag}' was not found.`);
    tags.splice(index, 1);
    return reply.code(204).send();
  });
  route('POST', '/api/registries/:name/checkNetworkAccess', (r) => {
    const reg = get(r.params.name!);
    const ip = String(r.body?.ip);
    if (reg.publicNetworkAccess === 'Disabled')
      return { ip, allowed: false, reason: 'publicNetworkAccessDisabled' };
    if (reg.defaultAction === 'Allow') return { ip, allowed: true, via: 'defaultAction' };
    const rule = reg.ipRules.find(
      (x) =>
        x.value === ip ||
        (x.value.endsWith('/24') && ip.startsWith(x.value.split('.').slice(0, 3).join('.') + '.')),
    );
    return rule
      ? { ip, allowed: true, via: 'ipRule', matchedRule: rule.value }
      : {
          ip,
          allowed: false,
          reason: 'ipNotAllowed',
          message: `client with IP '${ip}' is not allowed access.`,
        };
  });
  route('GET', '/api/registries/:name/networkDenials', (r) => {
    get(r.params.name!);
    const value = [
      {
        time: '2026-01-02T03:04:05.000Z',
        clientIp: '198.51.100.7',
        method: 'GET',
        path: '/v2/',
        reason: 'ipNotAllowed',
        entry: 'public',
      },
      {
        time: '2026-01-02T03:00:00.000Z',
        clientIp: '198.51.100.8',
        method: 'HEAD',
        path: '/v2/app/manifests/v1',
        reason: 'ipNotAllowed',
        entry: 'public',
      },
    ].filter((d) => !r.query.ip || d.clientIp === r.query.ip);
    return { value, countsByIp: value.map((d) => ({ clientIp: d.clientIp, count: 1, lastSeen: d.time })) };
  });
  route('GET', '/api/registries/:name/privateEndpointConnections', (r) => {
    const reg = get(r.params.name!);
    return { value: [...reg.connections.keys()].map((pe) => connection(reg, pe)) };
  });
  const pe = (r: R) => {
    const reg = get(r.params.name!);
    if (!reg.connections.has(r.params.pe!)) {
      throw new HttpError(
        404,
        'ResourceNotFound',
        `Private endpoint connection '${r.params.pe}' was not found.`,
      );
    }
    return reg;
  };
  route('GET', '/api/registries/:name/privateEndpointConnections/:pe', (r) =>
    connection(pe(r), r.params.pe!),
  );
  route('PUT', '/api/registries/:name/privateEndpointConnections/:pe', (r, reply) => {
    const reg = get(r.params.name!);
    const existing = reg.connections.get(r.params.pe!);
    const state = r.body?.properties?.privateLinkServiceConnectionState;
    const address = r.body?.properties?.privateEndpoint?.address;
    if (existing) {
      if (address !== undefined && address !== existing.address) {
        throw new HttpError(
          409,
          'Conflict',
          'Only the connection state of an existing connection may change.',
        );
      }
      if (state) Object.assign(existing, { status: state.status, description: state.description ?? '' });
      return connection(reg, r.params.pe!);
    }
    if (!address)
      throw new HttpError(400, 'InvalidRequestContent', 'properties.privateEndpoint.address is required.');
    reg.connections.set(r.params.pe!, {
      address,
      status: state?.status ?? 'Pending',
      description: state?.description ?? '',
    });
    return reply.code(201).send(connection(reg, r.params.pe!));
  });
  route('DELETE', '/api/registries/:name/privateEndpointConnections/:pe', (r, reply) => {
    pe(r).connections.delete(r.params.pe!);
    return reply.code(204).send();
  });

  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    registries,
    seed(name, extra = {}) {
      const reg = Object.assign(newRegistry(name, 'Premium'), extra);
      registries.set(name, reg);
      return reg;
    },
    close: () => app.close(),
  };
}
