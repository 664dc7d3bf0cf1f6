import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Principal } from '../auth/identities.js';
import { DEFAULT_SESSION_LIMITS, PortalSessions, type SessionStore } from '../auth/sessions.js';
import { ManagementError } from '../errors/management.js';
import { CONNECTION_CHECK_INTERVAL_MS } from './connections.js';
import { closeIdleConnectionsWhileClosing } from './graceful-close.js';
import { clientAddressOf } from './guard.js';
import { IpRuleOperations } from '../management/ip-rules.js';
import { IpSetManager } from '../management/ip-sets.js';
import type { WebhookService } from '../management/webhooks.js';
import type { RoleName } from '../store/types.js';
import type { ManagementContext } from './management/context.js';
import { registerGcRoutes, type GcRouteDeps } from './management/gc.js';
import { registerIdentityRoutes } from './management/identities.js';
import { registerIpRuleRoutes } from './management/ip-rules.js';
import { registerIpSetRoutes } from './management/ip-sets.js';
import { registerManifestRoutes } from './management/manifests.js';
import { registerWebhookRoutes } from './management/webhooks.js';
import { registerNetworkRoutes } from './management/network.js';
import { buildOpenApi, type RouteDoc } from './management/openapi.js';
import { registerRegistryRoutes } from './management/registries.js';
import { registerRepositoryRoutes } from './management/repositories.js';
import { registerSignInRoutes } from './management/sign-in.js';
import { registerTokenRoutes } from './management/tokens.js';
import { authenticateRequest, isPortalRequest, registerSessionRoutes } from './management/sessions.js';
import { registerPortal } from './portal-static.js';

/** What the composition root hands the management API. */
export type ManagementDeps = Omit<
  ManagementContext,
  'route' | 'registryFor' | 'ipRules' | 'ipSets' | 'sessions'
> & {
  logger: Logger;
  /** Garbage collection and retention; their routes are absent without it. */
  operations?: GcRouteDeps;
  /** ACR-style webhooks; their routes are absent without it. */
  webhooks?: WebhookService;
  /** Where the built portal is (default: the package's dist/portal). */
  portalDir?: string;
  /** Where portal sessions live (default: this process's memory). */
  sessionStore?: SessionStore;
};

/**
 * Builds the management API (`/api/...`): ARM-shaped JSON, authenticated, role-checked; and serves
 * the portal's static files under `/`.
 */
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

  const sessions = new PortalSessions(DEFAULT_SESSION_LIMITS, Date.now, deps.sessionStore);
  app.addHook('onRequest', async (request) => {
    // Decided by the matched route, not the raw target: an absolute-form target
    // (`GET http://host/api/registries`) reaches the same route but does not start with '/api/'.
    const path = request.routeOptions.url ?? request.url;
    if (path === '/api/openapi.json' || !path.startsWith('/api/')) return;
    // Signing in is how a caller gets credentials; it checks the ones in its body itself.
    if (path === '/api/sessions' && request.method === 'POST') return;
    const client = clientAddressOf(request, deps.trustedProxies);
    request.principal = await authenticateRequest(request, deps.identities, sessions, client.text);
    // A key limited to some networks is useless outside them, on this API as on the data plane.
    const allowed = request.principal.allowedNetworks;
    if (allowed && !allowed.matches(client)) {
      throw new ManagementError(
        'NetworkAccessDenied',
        `The API key '${request.principal.name}' may not be used from ${client.text}; it is limited to other networks.`,
      );
    }
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
  const ctx: ManagementContext = {
    ...deps,
    route,
    registryFor,
    sessions,
    ipRules: new IpRuleOperations(deps.registries),
    ipSets: new IpSetManager(deps.access.store, deps.meta),
  };
  registerSessionRoutes(ctx);
  registerRegistryRoutes(ctx);
  registerRepositoryRoutes(ctx);
  registerManifestRoutes(ctx);
  registerNetworkRoutes(ctx);
  registerIpRuleRoutes(ctx);
  registerIpSetRoutes(ctx);
  registerIdentityRoutes(ctx);
  registerSignInRoutes(ctx);
  registerTokenRoutes(ctx);
  if (deps.operations) registerGcRoutes(ctx, deps.operations);
  if (deps.webhooks) registerWebhookRoutes(ctx, deps.webhooks);

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
  registerPortal(app, deps.portalDir);
  return app;
}

function sendManagementError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const managementError = toManagementError(error, request);
  if (managementError.status >= 500) request.log.error({ err: error }, 'management request failed');
  // A Basic challenge would make the browser pop up its own sign-in box over the portal's.
  if (managementError.code === 'AuthenticationFailed')
    reply.header(
      'WWW-Authenticate',
      isPortalRequest(request) ? 'Bearer realm="berth"' : 'Basic realm="berth", Bearer',
    );
  if (managementError.retryAfter !== undefined)
    reply.header('Retry-After', String(managementError.retryAfter));
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
