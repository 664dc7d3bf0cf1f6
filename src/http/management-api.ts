import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { IdentityService, Principal } from '../auth/identities.js';
import { ManagementError } from '../errors/management.js';
import { CONNECTION_CHECK_INTERVAL_MS } from './connections.js';
import { closeIdleConnectionsWhileClosing } from './graceful-close.js';
import type { NetworkAccessService } from '../management/network-access.js';
import type { PrivateEndpointManager } from '../management/private-endpoints.js';
import type { RegistryManager } from '../management/registries.js';
import type { IpMatcher } from '../network/index.js';
import type { DenialAuditStore, MetadataStore, RoleName } from '../store/types.js';
import { registerIdentityRoutes } from './management/identities.js';
import { registerNetworkRoutes } from './management/network.js';
import { buildOpenApi, type RouteDoc } from './management/openapi.js';
import { registerRegistryRoutes } from './management/registries.js';
import { registerRepositoryRoutes } from './management/repositories.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
}

/** What the management API's route modules need. */
export interface ManagementContext {
  registries: RegistryManager;
  privateEndpoints: PrivateEndpointManager;
  access: NetworkAccessService;
  identities: IdentityService;
  meta: MetadataStore;
  audit: DenialAuditStore;
  trustedProxies: IpMatcher;
  /** Public data-plane URLs, for `show-endpoints`. */
  dataEndpoints: string[];
  /** Registers a documented route (validated by its schemas, listed in the OpenAPI document). */
  route: (doc: RouteDoc) => void;
  /**
   * Checks the caller's role on a registry, then resolves it: the role comes first, so a caller
   * without one learns nothing (403), not even whether the registry exists (404).
   */
  registryFor: (principal: Principal, name: string, role: RoleName) => Promise<string>;
}

export type ManagementDeps = Omit<ManagementContext, 'route' | 'registryFor'> & { logger: Logger };

/** Builds the management API (`/api/...`): ARM-shaped JSON, authenticated, role-checked. */
export function buildManagementApi(deps: ManagementDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: 1024 * 1024,
    // Header timeouts (set by the composition root) are checked this often, not Node's every 30 s.
    http: { connectionsCheckingInterval: CONNECTION_CHECK_INTERVAL_MS },
    // Router-level failures (over-long or malformed path parameters) get the ARM error body too.
    frameworkErrors: (error, request, reply) => sendManagementError(error, request, reply),
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false, useDefaults: false },
    },
  }) as unknown as FastifyInstance;
  closeIdleConnectionsWhileClosing(app);
  app.decorateRequest('principal', undefined as unknown as Principal);

  const docs: RouteDoc[] = [];
  const route = (doc: RouteDoc) => {
    docs.push(doc);
    app.route({
      method: doc.method,
      url: doc.url,
      schema: {
        ...(doc.body ? { body: doc.body } : {}),
        ...(doc.params ? { params: doc.params } : {}),
        ...(doc.querystring ? { querystring: doc.querystring } : {}),
      },
      handler: (request, reply) => doc.handler(request, reply),
    });
  };

  app.addHook('onRequest', async (request) => {
    // Decided by the matched route, not the raw target: an absolute-form target
    // (`GET http://host/api/registries`) reaches the same route but does not start with '/api/'.
    const path = request.routeOptions.url ?? request.url;
    if (path === '/api/openapi.json' || !path.startsWith('/api/')) return;
    request.principal = await deps.identities.authenticate(request.headers.authorization);
  });
  app.setErrorHandler((error, request, reply) => sendManagementError(error, request, reply));
  app.setNotFoundHandler((request, reply) =>
    sendManagementError(
      new ManagementError(
        'ResourceNotFound',
        `No such operation: ${request.method} ${request.url.split('?')[0]}`,
      ),
      request,
      reply,
    ),
  );

  const registryFor = async (principal: Principal, name: string, role: RoleName) => {
    // Registry names are case-insensitive and stored in lower case, as role assignments are.
    deps.identities.authorize(principal, name.toLowerCase(), role);
    return (await deps.registries.get(name)).name;
  };
  const ctx: ManagementContext = { ...deps, route, registryFor };
  registerRegistryRoutes(ctx);
  registerRepositoryRoutes(ctx);
  registerNetworkRoutes(ctx);
  registerIdentityRoutes(ctx);

  // Registered like every other route so the document lists itself; built once, after all routes.
  let openapi: ReturnType<typeof buildOpenApi> | undefined;
  route({
    method: 'GET',
    url: '/api/openapi.json',
    summary: 'This OpenAPI 3.1 document (no authentication needed)',
    tag: 'Meta',
    responses: { 200: { description: 'The OpenAPI document' } },
    handler: async () => (openapi ??= buildOpenApi(docs)),
  });
  return app;
}

function sendManagementError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const managementError = toManagementError(error, request);
  if (managementError.status >= 500) request.log.error({ err: error }, 'management request failed');
  if (managementError.code === 'AuthenticationFailed')
    reply.header('WWW-Authenticate', 'Basic realm="berth", Bearer');
  reply.code(managementError.status).send(managementError.toBody());
}

function toManagementError(error: unknown, request: FastifyRequest): ManagementError {
  if (error instanceof ManagementError) return error;
  const fastifyError = error as {
    statusCode?: number;
    validation?: { instancePath: string; message?: string; params?: Record<string, unknown> }[];
    message: string;
    validationContext?: string;
  };
  if (fastifyError.validation) {
    const issue = fastifyError.validation[0];
    const where = `${fastifyError.validationContext ?? 'body'}${issue?.instancePath.replace(/\//g, '.') ?? ''}`;
    const extra = issue?.params?.additionalProperty;
    const allowed = issue?.params?.allowedValues as unknown[] | undefined;
    const message = extra
      ? `Unknown property '${String(extra)}' in ${where}.`
      : allowed
        ? `${where} must be one of: ${allowed.join(', ')}.`
        : `${where} ${issue?.message ?? 'is invalid'}.`;
    return new ManagementError('InvalidRequestContent', message, {
      target: extra ? `${where}.${String(extra)}` : where,
    });
  }
  if (
    typeof fastifyError.statusCode === 'number' &&
    fastifyError.statusCode >= 400 &&
    fastifyError.statusCode < 500
  ) {
    if (fastifyError.statusCode === 413)
      return new ManagementError('RequestEntityTooLarge', 'The request body is larger than 1 MiB.');
    return new ManagementError('InvalidRequestContent', fastifyError.message);
  }
  return new ManagementError('InternalServerError', `Internal error (request ${request.id}).`);
}
