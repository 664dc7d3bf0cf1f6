import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import type { Logger } from 'pino';
import { OciError } from '../errors/oci.js';
import type { RegistryDirectory } from '../registry/directory.js';
import { assertRepositoryName } from '../registry/names.js';
import type { RegistryService } from '../registry/service.js';
import {
  cancelUpload,
  completeUpload,
  deleteBlob,
  getBlob,
  getUploadStatus,
  patchUpload,
  startUpload,
} from './v2/blobs.js';
import { hasBody, type V2Context } from './v2/context.js';
import { listCatalog, listTags } from './v2/discovery.js';
import { deleteManifest, getManifest, getReferrers, putManifest } from './v2/manifests.js';
import { parseV2Path, type V2Route } from './v2/routes.js';
import {
  answerClientError,
  CONNECTION_CHECK_INTERVAL_MS,
  limitConnections,
  type ConnectionLimits,
} from './connections.js';
import { sendOciError } from './errors.js';
import { closeIdleConnectionsWhileClosing } from './graceful-close.js';
import type { NetworkGuard } from './guard.js';
import { registerTokenRoutes } from './oauth2.js';
import type { DataPlaneAuth } from './v2/auth.js';
import type { DataPlaneCredentials } from '../auth/credentials.js';
import type { TokenService } from '../auth/tokens.js';
import { isHealthProbe, observeRequests, registerHealthRoutes, type RequestObserver } from './observe.js';
import { openRequestBody, settleUnreadBody, type BodyLimits } from './request-body.js';

export interface DataPlaneOptions {
  service: RegistryService;
  /** Maps Host to a registry (public listeners). */
  directory: RegistryDirectory;
  /** A private endpoint's listener serves only its own registry, whatever the Host says. */
  fixedRegistry?: string;
  logger: Logger;
  /** The network guard; absent means every client may connect (used only by unit-level tests). */
  guard?: NetworkGuard;
  https?: { key: Buffer; cert: Buffer };
  /** Sign-in: `/oauth2/token` and the check of every `/v2/` request (absent only in unit-level tests). */
  auth?: { check: DataPlaneAuth; credentials: DataPlaneCredentials; tokens: TokenService };
  /** Wraps the HTTP server's connections, e.g. to read a PROXY protocol header first. */
  serverFactory?: FastifyServerOptions['serverFactory'];
  /** Receive every finished request (metrics, access log, webhooks). */
  observers?: RequestObserver[];
  /** `/readyz`: resolves when the stores answer. */
  ready?: () => Promise<void>;
  /** Connection caps and header timeout of this listener. */
  connectionLimits: Omit<ConnectionLimits, 'answerInOciShape'>;
  /** Stalled and dripping request bodies are cut off with 408. */
  bodyLimits: BodyLimits;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The registry this request addresses, resolved from Host (or the listener) before the guard runs. */
    registry: string;
  }
}

const METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'] as const;

/** Builds the OCI Distribution data plane (`/v2/...`) as a fastify app. */
export function buildDataPlane(options: DataPlaneOptions): FastifyInstance {
  /** Which registry the request addresses, then the network guard's decision (throws DENIED). */
  const admit = async (request: FastifyRequest): Promise<void> => {
    assertSingleHost(request);
    request.registry = options.fixedRegistry ?? options.directory.resolve(request.headers.host);
    if (options.guard) await options.guard.check(request, request.registry);
  };
  const serverOptions: FastifyServerOptions & {
    https?: { key: Buffer; cert: Buffer; connectionsCheckingInterval: number };
  } = {
    loggerInstance: options.logger,
    exposeHeadRoutes: false,
    // The access log (src/http/observe.ts) writes one line per request instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // Node's default 5 s keep-alive is shorter than most clients' idle pools; avoid racing them.
    keepAliveTimeout: 65_000,
    // Uploads of large layers take as long as they take; timeouts apply to idle sockets only.
    requestTimeout: 0,
    return503OnClosing: true,
    // A request without Host (HTTP/1.0 clients, health probes) reaches the default registry instead of
    // Node's bare 400, which would carry no OCI error body.
    ...(options.https
      ? {}
      : { http: { requireHostHeader: false, connectionsCheckingInterval: CONNECTION_CHECK_INTERVAL_MS } }),
    routerOptions: { maxParamLength: 1024 },
    ...(options.https
      ? { https: { ...options.https, connectionsCheckingInterval: CONNECTION_CHECK_INTERVAL_MS } }
      : {}),
    ...(options.serverFactory ? { serverFactory: options.serverFactory } : {}),
    // Requests the router rejects (bad percent-encoding, bad Host) are still network-checked first
    // and still answered in the OCI error shape.
    frameworkErrors: (error, request, reply) => {
      admit(request)
        .then(() => Promise.reject(error))
        .catch((failure: unknown) => sendOciError(failure, request, reply));
    },
    // Bytes that are not HTTP at all never become a request; answer them in the OCI shape too.
    clientErrorHandler: answerClientError,
  };
  const app = Fastify(serverOptions) as unknown as FastifyInstance;
  closeIdleConnectionsWhileClosing(app);
  limitConnections(app.server, { ...options.connectionLimits, answerInOciShape: !options.https });
  // Node answers `Expect: 100-continue` itself before any hook runs, inviting a refused client to send
  // its whole body. Take the event over: the request goes through the guard, and only a handler that
  // is about to read the body says "100 Continue".
  app.server.on('checkContinue', (request, response) => app.server.emit('request', request, response));
  // Bodies are streamed by the handlers themselves (blobs, chunks, manifests), never parsed or buffered here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
  app.decorateRequest('registry', '');
  app.decorateRequest('clientAddress', undefined);
  app.decorateRequest('bypassIdentity', undefined);
  app.decorateRequest('catalogFilter', undefined);
  app.decorateRequest('identity', undefined);
  app.decorateRequest('networkDenial', undefined);
  observeRequests(app, options.observers ?? []);
  registerHealthRoutes(app, options.ready ?? (async () => undefined));
  app.decorateRequest('body_', undefined);

  app.addHook('onRequest', async (request, reply) => {
    // Health probes are answered whatever the network rules say, and say nothing about registries.
    if (isHealthProbe(request)) return;
    reply.header('Docker-Distribution-API-Version', 'registry/2.0');
    if (hasBody(request)) settleUnreadBody(request, reply);
    await admit(request);
    options.guard?.track(request, reply);
  });
  app.setErrorHandler((error, request, reply) => sendOciError(error, request, reply));
  app.setNotFoundHandler((request, reply) =>
    sendOciError(
      new OciError('UNSUPPORTED', `no such endpoint: ${request.method} ${pathOf(request.url)}`, undefined, {
        status: 404,
      }),
      request,
      reply,
    ),
  );

  const openBody = (request: FastifyRequest) => {
    const body = openRequestBody(request, options.bodyLimits);
    // Watched by the guard so a rule change can cut an upload off mid-way.
    options.guard?.watchBody(request, body);
    return body;
  };
  const handle = async (request: FastifyRequest, reply: import('fastify').FastifyReply) => {
    const url = request.url;
    const queryStart = url.indexOf('?');
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    const route = parseV2Path(path.slice('/v2'.length));
    if (!route)
      throw new OciError('UNSUPPORTED', `no such endpoint: ${request.method} ${path}`, undefined, {
        status: 404,
      });
    request.v2Route = route;
    const query = new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1));
    // The address the guard decided for, so `berth check-health` can show what the registry sees
    // (on the 401 challenge too: a client may learn its own address before it signs in).
    if (route.kind === 'base' && request.clientAddress)
      reply.header('Berth-Client-Address', request.clientAddress.text);
    // Credentials are checked after the guard (onRequest) and before any body is invited.
    if (options.auth) await options.auth.check.authorize(request, route, query);
    if (request.headers.expect?.toLowerCase() === '100-continue' && !reply.raw.headersSent)
      reply.raw.writeContinue();
    const ctx: V2Context = {
      request,
      reply,
      registry: request.registry,
      repository: 'name' in route ? assertRepositoryName(route.name) : '',
      query,
      service: options.service,
      body: hasBody(request) ? openBody(request) : request.raw,
    };
    await dispatch(route, request.method, ctx);
    // Async handlers that send (possibly a stream) must return the reply, or fastify sends again.
    return reply;
  };
  if (options.auth) registerTokenRoutes(app, options.auth.credentials, options.auth.tokens);
  app.route({ method: [...METHODS], url: '/v2', handler: handle });
  app.route({ method: [...METHODS], url: '/v2/*', handler: handle });
  return app;
}

async function dispatch(route: V2Route, method: string, ctx: V2Context): Promise<void> {
  const head = method === 'HEAD';
  switch (route.kind) {
    case 'base':
      if (method === 'GET' || head) {
        return void ctx.reply
          .code(200)
          .header('Content-Type', 'application/json')
          .send(head ? undefined : '{}');
      }
      break;
    case 'catalog':
      if (method === 'GET') return listCatalog(ctx);
      break;
    case 'tags':
      if (method === 'GET') return listTags(ctx);
      break;
    case 'manifest':
      if (method === 'GET' || head) return getManifest(ctx, route.reference, head);
      if (method === 'PUT') return putManifest(ctx, route.reference);
      if (method === 'DELETE') return deleteManifest(ctx, route.reference);
      break;
    case 'blob':
      if (method === 'GET' || head) return getBlob(ctx, route.digest, head);
      if (method === 'DELETE') return deleteBlob(ctx, route.digest);
      break;
    case 'uploads':
      if (method === 'POST') return startUpload(ctx);
      break;
    case 'upload':
      if (method === 'GET') return getUploadStatus(ctx, route.id);
      if (method === 'PATCH') return patchUpload(ctx, route.id);
      if (method === 'PUT') return completeUpload(ctx, route.id);
      if (method === 'DELETE') return cancelUpload(ctx, route.id);
      break;
    case 'referrers':
      if (method === 'GET') return getReferrers(ctx, route.digest);
      break;
  }
  throw new OciError('UNSUPPORTED', `${method} is not supported on this endpoint`);
}

/**
 * HTTP/1.1 requires a 400 for a request with more than one Host (RFC 9112 §3.2); Node keeps the first
 * silently, and two hosts could mean two registries to two readers, so such a request goes no further.
 */
function assertSingleHost(request: FastifyRequest): void {
  const raw = request.raw.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') hosts++;
  if (hosts > 1)
    throw new OciError('UNSUPPORTED', 'a request must carry exactly one Host header', undefined, {
      status: 400,
    });
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return (q === -1 ? url : url.slice(0, q)).slice(0, 200);
}
