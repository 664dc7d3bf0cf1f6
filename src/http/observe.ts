import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { BerthMetrics } from './metrics.js';
import { parseV2Path, type V2Route } from './v2/routes.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The `/v2/` endpoint, once the handler parsed the path (the observers reuse it). */
    v2Route: V2Route | undefined;
    /** Whether the request is a health probe, once asked (every hook asks). */
    healthProbe: boolean | undefined;
  }
}

/** What one finished data-plane request was, for metrics, the access log and webhooks. */
export interface RequestOutcome {
  id: string;
  registry: string;
  /** The OCI route kind (`manifest`, `blob`, `upload`, …) or `unknown`. */
  route: string;
  repository: string | undefined;
  /** A manifest's tag or digest, as requested. */
  reference: string | undefined;
  method: string;
  /** The path without its query (which may carry upload state). */
  path: string;
  host: string;
  userAgent: string;
  status: number;
  durationMs: number;
  /** Bytes read from the connection for this request (headers and body). */
  bytesIn: number;
  /** Bytes written to the connection for this response (headers and body). */
  bytesOut: number;
  clientIp: string | undefined;
  identity: string | undefined;
  /** `Docker-Content-Digest` of the response. */
  digest: string | undefined;
  /** The request's `Content-Type` and `Content-Length` (a pushed manifest's media type and size). */
  contentType: string | undefined;
  contentLength: number | undefined;
  /** The network guard's reason when it refused the request. */
  denialReason: string | undefined;
}

/** Receives every finished data-plane request. */
export type RequestObserver = (outcome: RequestOutcome) => void;

const HEALTH_PATHS = new Set(['/healthz', '/readyz']);

/** Whether a request is a health probe, which no network rule, log line or metric concerns. */
export function isHealthProbe(request: FastifyRequest): boolean {
  if (request.healthProbe !== undefined) return request.healthProbe;
  const url = request.url;
  const q = url.indexOf('?');
  request.healthProbe = HEALTH_PATHS.has(q === -1 ? url : url.slice(0, q));
  return request.healthProbe;
}

/**
 * Registers `GET /healthz` (the process is up) and `GET /readyz` (its stores answer). Both answer
 * with a bare status, so they reveal nothing about the registries behind them.
 */
export function registerHealthRoutes(app: FastifyInstance, ready: () => Promise<void>): void {
  app.get('/healthz', async (_request, reply) => reply.code(200).type('text/plain').send('ok\n'));
  app.get('/readyz', async (request, reply) => {
    try {
      await ready();
      return reply.code(200).type('text/plain').send('ready\n');
    } catch (err) {
      request.log.warn({ err }, 'readiness check failed');
      return reply.code(503).type('text/plain').send('not ready\n');
    }
  });
}

/** Adds the hooks that turn every data-plane request into one `RequestOutcome` for the observers. */
export function observeRequests(app: FastifyInstance, observers: RequestObserver[]): void {
  // A connection's byte counters where its previous response ended: Node reads a small body together
  // with the headers, before any hook runs, so counting from the request's start would miss it.
  const counted = new WeakMap<object, { read: number; written: number }>();
  app.decorateRequest('v2Route', undefined);
  app.decorateRequest('healthProbe', undefined);
  app.addHook('onResponse', async (request, reply) => {
    const socket = request.raw.socket;
    const start = counted.get(socket) ?? { read: 0, written: 0 };
    const now = { read: socket.bytesRead, written: socket.bytesWritten };
    counted.set(socket, now);
    if (isHealthProbe(request)) return;
    const outcome = outcomeOf(request, reply, now.read - start.read, now.written - start.written);
    for (const observer of observers) observer(outcome);
  });
}

function outcomeOf(
  request: FastifyRequest,
  reply: FastifyReply,
  bytesIn: number,
  bytesOut: number,
): RequestOutcome {
  const url = request.url;
  const q = url.indexOf('?');
  const path = (q === -1 ? url : url.slice(0, q)).slice(0, 1024);
  // Parsed by the handler already, unless the request ended before it (refused, unauthorized).
  const route =
    request.v2Route ?? (path === '/v2' || path.startsWith('/v2/') ? parseV2Path(path.slice(3)) : undefined);
  const length = Number(request.headers['content-length']);
  const digest = reply.getHeader('docker-content-digest');
  return {
    id: String(request.id),
    registry: request.registry,
    route: route?.kind ?? 'unknown',
    repository: route && 'name' in route ? route.name : undefined,
    reference: route?.kind === 'manifest' ? route.reference : undefined,
    method: request.method,
    path,
    host: request.headers.host ?? '',
    userAgent: request.headers['user-agent'] ?? '',
    status: reply.statusCode,
    durationMs: reply.elapsedTime,
    bytesIn: Math.max(0, bytesIn),
    bytesOut: Math.max(0, bytesOut),
    clientIp: request.clientAddress?.text,
    identity: identityOf(request),
    digest: typeof digest === 'string' ? digest : undefined,
    contentType: request.headers['content-type'],
    contentLength: Number.isFinite(length) ? length : undefined,
    denialReason: request.networkDenial,
  };
}

/** The signed-in identity's name, once data-plane sign-in sets one on the request. */
function identityOf(request: FastifyRequest): string | undefined {
  return request.identity?.name;
}

/** Feeds the Prometheus metrics. */
export function metricsObserver(metrics: BerthMetrics): RequestObserver {
  return (o) => {
    const status = String(o.status);
    metrics.requests.inc({ registry: o.registry, route: o.route, method: o.method, status });
    metrics.duration.observe({ route: o.route, method: o.method }, o.durationMs / 1000);
    if (o.bytesIn > 0) metrics.received.inc({ registry: o.registry, route: o.route }, o.bytesIn);
    if (o.bytesOut > 0) metrics.sent.inc({ registry: o.registry, route: o.route }, o.bytesOut);
    if (o.denialReason) metrics.denials.inc({ registry: o.registry, reason: o.denialReason });
  };
}

/**
 * Refused requests logged per client address and minute before the rest are only counted (the denial
 * log counts every one of them exactly, so one line a minute per address is enough to see who).
 */
const REFUSED_LINES_PER_MINUTE = 1;
const TRACKED_CLIENTS = 10_000;

/**
 * One structured line per data-plane request. A refused client can send without limit, so its lines
 * are capped per minute; the next line after the cap says how many were suppressed.
 */
export function accessLogObserver(log: Logger, now: () => number = Date.now): RequestObserver {
  const refused = new Map<string, { windowStart: number; lines: number; suppressed: number }>();
  return (o) => {
    if (!log.isLevelEnabled('info')) return;
    let suppressed = 0;
    if (o.denialReason) {
      const key = o.clientIp ?? '';
      const at = now();
      let entry = refused.get(key);
      if (!entry || at - entry.windowStart >= 60_000) {
        suppressed = entry?.suppressed ?? 0;
        if (!entry && refused.size >= TRACKED_CLIENTS) refused.clear();
        entry = { windowStart: at, lines: 0, suppressed: 0 };
        refused.set(key, entry);
      }
      if (entry.lines >= REFUSED_LINES_PER_MINUTE) {
        entry.suppressed++;
        return;
      }
      entry.lines++;
    }
    log.info(
      {
        reqId: o.id,
        method: o.method,
        path: o.path,
        status: o.status,
        bytesIn: o.bytesIn,
        bytesOut: o.bytesOut,
        durationMs: Math.round(o.durationMs * 1000) / 1000,
        clientIp: o.clientIp,
        registry: o.registry,
        identity: o.identity,
        ...(o.denialReason ? { denialReason: o.denialReason } : {}),
        ...(suppressed > 0 ? { suppressedBefore: suppressed } : {}),
      },
      'request',
    );
  };
}
