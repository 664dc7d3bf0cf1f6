import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { requestTimeout } from '../errors/oci.js';
import { contentLength } from './v2/context.js';

/** How request bodies are watched and what happens to a body the handler did not read. */
export interface BodyLimits {
  /** A body that delivers nothing for this long (while Berth is reading) is cut off with 408. */
  idleTimeoutMs: number;
  /** Below this many bytes per second over a window (while Berth is reading), 408; 0 turns it off. */
  minBytesPerSecond: number;
}

/**
 * An unread body this small (by its Content-Length) is read and discarded after an early answer, so
 * the connection stays usable; anything larger, or of unknown length, closes the connection instead.
 */
export const DRAIN_LIMIT_BYTES = 64 * 1024;
/** After such a closing answer, what the client still sends is read and dropped this long (at most). */
const LINGER_MS = 2000;
const LINGER_BYTES = 8 * 1024 * 1024;
const TICK_MS = 1000;
const RATE_WINDOW_MS = 10_000;

const openBodies = new WeakMap<IncomingMessage, PassThrough>();
/** Bodies that failed before their handler opened them, with the failure the handler will meet. */
const failedBodies = new WeakMap<IncomingMessage, Error>();

/** Ends the request's body with `error` (e.g. its bytes stopped being HTTP), now or when it is opened. */
export function failRequestBody(raw: IncomingMessage, error: Error): void {
  if (raw.complete) return;
  const body = openBodies.get(raw);
  if (!body) return void failedBodies.set(raw, error);
  raw.unpipe(body);
  body.destroy(error);
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The handler's copy of the request body, when one was opened. */
    body_?: PassThrough;
  }
}

/**
 * The request body as handlers read it: a copy that a failure can end without ever taking the process
 * down (an aborted or malformed body errors this stream, and no reader may be attached yet), watched
 * for stalls and slow drips, and released when the answer has been sent.
 */
export function openRequestBody(request: FastifyRequest, limits: BodyLimits): PassThrough {
  const raw = request.raw;
  const body = new PassThrough({ highWaterMark: 1024 * 1024 });
  // The reader (a pipeline, an iterator) attaches its own listener when it starts; until then a failure
  // must have somewhere to go, or Node treats it as unhandled and exits.
  body.on('error', () => undefined);
  raw.on('error', (error) => body.destroy(error));
  raw.pipe(body);
  request.body_ = body;
  openBodies.set(raw, body);
  const failed = failedBodies.get(raw);
  if (failed) {
    raw.unpipe(body);
    body.destroy(failed);
  }
  watchProgress(request, body, limits);
  return body;
}

/** Cuts off a body that stops or drips, counting only time in which Berth was actually reading it. */
function watchProgress(request: FastifyRequest, body: PassThrough, limits: BodyLimits): void {
  const raw = request.raw;
  let arrived = false;
  let idleMs = 0;
  let windowMs = 0;
  let windowBytes = 0;
  const onData = (chunk: Buffer) => {
    arrived = true;
    windowBytes += chunk.length;
  };
  raw.on('data', onData);
  const stop = () => {
    clearInterval(timer);
    raw.off('data', onData);
  };
  const stall = (message: string, detail: Record<string, number>) => {
    stop();
    request.log.info({ ...detail, path: request.url.slice(0, 200) }, 'request body timed out');
    if (body.destroyed) {
      // Released after the answer went out (a remainder being drained): nothing left to tell the client.
      raw.socket?.destroy();
      return;
    }
    raw.unpipe(body);
    body.destroy(requestTimeout(message));
  };
  const timer = setInterval(() => {
    if (raw.complete || raw.destroyed) return stop();
    // Paused means Berth is not reading (busy, or pushing back): the client is waiting on us, not idle.
    if (raw.readableFlowing !== true) {
      arrived = false;
      idleMs = windowMs = windowBytes = 0;
      return;
    }
    idleMs = arrived ? 0 : idleMs + TICK_MS;
    arrived = false;
    windowMs += TICK_MS;
    if (idleMs >= limits.idleTimeoutMs)
      return stall(`no request body bytes arrived for ${idleMs} ms`, { idleMs });
    if (windowMs >= RATE_WINDOW_MS) {
      const rate = (windowBytes * 1000) / windowMs;
      if (limits.minBytesPerSecond > 0 && rate < limits.minBytesPerSecond) {
        return stall(
          `the request body arrived at ${Math.floor(rate)} bytes/s, below the minimum of ${limits.minBytesPerSecond}`,
          { bytesPerSecond: Math.floor(rate) },
        );
      }
      windowMs = windowBytes = 0;
    }
  }, TICK_MS);
  timer.unref();
  raw.once('close', stop);
  raw.once('end', stop);
}

/** A response whose `writeHead` can be wrapped (Node's overloads, flattened). */
type WritesHead = ServerResponse & { writeHead(this: ServerResponse, ...args: unknown[]): ServerResponse };

/**
 * For a request with a body, whatever its answer turns out to be: when the answer goes out before the
 * body was read to its end (an error, a refusal, a route that takes no body), a small remainder is
 * drained so keep-alive keeps working, while a large or unknown one is not read at all and the answer
 * says `Connection: close`. Either way nothing keeps the body alive afterwards. Per request rather
 * than as fastify hooks, so that requests without a body (nearly all reads) pay nothing.
 */
export function settleUnreadBody(request: FastifyRequest, reply: FastifyReply): void {
  const raw = request.raw;
  const response = reply.raw as unknown as WritesHead;
  const writeHead = response.writeHead;
  // The answer's headers are decided at the last moment: by then the handler may have read it all.
  response.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    if (!raw.complete) {
      const declared = contentLength(request);
      if (declared === undefined || declared > DRAIN_LIMIT_BYTES) {
        this.setHeader('Connection', 'close');
        lingerOnClose(request);
      }
    }
    return writeHead.apply(this, args);
  };
  response.once('finish', () => {
    const body = request.body_;
    if (body) {
      request.body_ = undefined;
      raw.unpipe(body);
      body.destroy();
    }
    // Node drains an untouched body itself, but not one that was piped somewhere and then left.
    if (!raw.complete && !raw.destroyed) raw.resume();
  });
}

/**
 * Node closes a `Connection: close` socket right after the answer. Closing while the client is still
 * sending makes the kernel answer with a reset, which can make the client discard our answer unread;
 * so, like a web server's lingering close, the sending side is shut and what still arrives is read and
 * dropped for a moment (bounded in time and bytes) before the socket is destroyed.
 */
function lingerOnClose(request: FastifyRequest): void {
  const socket = request.raw.socket as (Socket & { destroySoon?: () => void }) | null;
  if (!socket || socket.destroyed) return;
  socket.destroySoon = () => {
    const readBefore = socket.bytesRead;
    const destroy = () => {
      clearInterval(check);
      clearTimeout(timer);
      socket.destroy();
    };
    const timer = setTimeout(destroy, LINGER_MS);
    const check = setInterval(() => {
      if (socket.bytesRead - readBefore > LINGER_BYTES) destroy();
    }, 100);
    timer.unref();
    check.unref();
    socket.once('close', destroy);
    socket.end();
    request.raw.resume();
  };
}
