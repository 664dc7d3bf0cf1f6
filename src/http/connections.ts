import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { OciError } from '../errors/oci.js';
import { parseClientAddress, type IpMatcher } from '../network/index.js';
import { failRequestBody } from './request-body.js';

/** How many connections a listener holds, and how long a request's headers may take. */
export interface ConnectionLimits {
  /** Open connections on this listener. */
  maxConnections: number;
  /** Open connections from one peer address (undefined: no per-peer cap, as on the management listener). */
  maxConnectionsPerClient?: number;
  /** Peers exempt from the per-peer cap: trusted proxies carry many clients over their connections. */
  exempt?: IpMatcher;
  /** Headers must be complete this long after a request starts, else 408. */
  headerTimeoutMs: number;
  /** Whether connections over the cap are told why in an OCI error body (false: closed at once). */
  answerInOciShape: boolean;
}

/** How often Node looks for requests past their header timeout; its default (30 s) is too coarse. */
export const CONNECTION_CHECK_INTERVAL_MS = 1000;
const REJECTED_LINGER_MS = 2000;

/**
 * Caps a listener's connections, in total and per peer, before Node's HTTP parser ever sees them, and
 * sets the header timeout. A connection over a cap gets 429 with `Retry-After` (on plain HTTP) and is
 * closed, so a flood of half-open connections cannot take every descriptor the process has.
 */
export function limitConnections(server: Server, limits: ConnectionLimits): void {
  server.headersTimeout = limits.headerTimeoutMs;
  const admitted = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const perPeer = new Map<string, number>();
  let open = 0;
  server.on('connection', (socket: Socket) => {
    const peer = parseClientAddress(socket.remoteAddress ?? '');
    const key = peer?.text ?? '';
    const capped =
      limits.maxConnectionsPerClient !== undefined && !(peer && limits.exempt?.match(peer) !== undefined);
    const fromPeer = capped ? (perPeer.get(key) ?? 0) : 0;
    if (open >= limits.maxConnections) {
      return reject(socket, limits, `this listener already holds ${open} connections`, 'maxConnections');
    }
    if (capped && fromPeer >= limits.maxConnectionsPerClient!) {
      return reject(
        socket,
        limits,
        `client ${key} already holds ${fromPeer} connections`,
        'maxConnectionsPerClient',
      );
    }
    open++;
    if (capped) perPeer.set(key, fromPeer + 1);
    socket.once('close', () => {
      open--;
      if (!capped) return;
      const left = (perPeer.get(key) ?? 1) - 1;
      if (left <= 0) perPeer.delete(key);
      else perPeer.set(key, left);
    });
    for (const listener of admitted) listener.call(server, socket);
  });
}

function reject(socket: Socket, limits: ConnectionLimits, message: string, limit: string): void {
  socket.on('error', () => undefined);
  if (!limits.answerInOciShape) return void socket.destroy();
  const body = JSON.stringify(
    new OciError('TOOMANYREQUESTS', `too many connections: ${message}`, { limit }).toBody(),
  );
  socket.end(
    `HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Retry-After: 1\r\nDocker-Distribution-API-Version: registry/2.0\r\nConnection: close\r\n\r\n${body}`,
  );
  // Read (and drop) what the client already sent, so closing does not reset the answer away.
  socket.resume();
  setTimeout(() => socket.destroy(), REJECTED_LINGER_MS).unref();
}

/**
 * Answers bytes that never became a request, in the OCI shape: 408 when the headers took too long,
 * 400 when they are not HTTP. A response still in flight on the socket (the previous, well-formed
 * request) keeps its answer: the connection closes after it instead.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  const inFlight = (socket as Socket & { _httpMessage?: InFlightResponse })._httpMessage;
  if (inFlight && !inFlight.writableFinished) {
    // Nothing more is parsed from this connection; the answer being prepared ends it. When the bad
    // bytes were that request's own body, its handler hears so and answers 400 at once.
    socket.pause();
    failRequestBody(
      inFlight.req,
      new OciError('BLOB_UPLOAD_INVALID', 'the request body is not valid HTTP framing', undefined, {
        status: 400,
        headers: { Connection: 'close' },
      }),
    );
    if (!inFlight.headersSent) inFlight.shouldKeepAlive = false;
    else inFlight.once('finish', () => socket.destroy());
    return;
  }
  if (!socket.writable) return void socket.destroy(error);
  const timeout = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const body = JSON.stringify(
    (timeout
      ? new OciError('UNSUPPORTED', 'the request headers did not arrive in time', undefined, { status: 408 })
      : new OciError('UNSUPPORTED', 'malformed HTTP request', undefined, { status: 400 })
    ).toBody(),
  );
  socket.end(
    `HTTP/1.1 ${timeout ? '408 Request Timeout' : '400 Bad Request'}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nDocker-Distribution-API-Version: registry/2.0\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}

interface InFlightResponse {
  req: IncomingMessage;
  writableFinished: boolean;
  headersSent: boolean;
  shouldKeepAlive: boolean;
  once(event: 'finish', listener: () => void): void;
}
