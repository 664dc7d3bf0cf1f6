import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { parseClientAddress, parseProxyHeader, type IpMatcher } from '../network/index.js';

const HEADER_TIMEOUT_MS = 5_000;
/** v2 headers are 16 bytes plus at most 65535; anything larger is not a PROXY header. */
const MAX_HEADER_BYTES = 16 + 65_535;

/**
 * A fastify `serverFactory` whose connections from trusted load balancers must start with a PROXY
 * protocol (v1 or v2) header naming the real client; the source is kept on the socket for the guard.
 * Connections from any other peer are plain HTTP, so nobody else can claim an address this way.
 */
export function proxyProtocolServerFactory(trustedProxies: IpMatcher, https?: { key: Buffer; cert: Buffer }) {
  return (handler: RequestListener): Server => {
    const server = (https ? createHttpsServer(https, handler) : createHttpServer(handler)) as Server;
    const original = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    // Connections still waiting for their header are not yet the HTTP server's, so it cannot close
    // them; they are idle by definition, and shutting down must not wait out their header timeout.
    const awaitingHeader = new Set<Socket>();
    for (const method of ['closeIdleConnections', 'closeAllConnections'] as const) {
      const close = server[method].bind(server);
      server[method] = () => {
        for (const socket of awaitingHeader) socket.destroy();
        close();
      };
    }
    server.on('connection', (socket: Socket) => {
      const peer = parseClientAddress(socket.remoteAddress ?? '');
      if (!peer || trustedProxies.match(peer) === undefined) {
        for (const listener of original) listener.call(server, socket);
        return;
      }
      awaitingHeader.add(socket);
      readProxyHeader(socket)
        .then(
          (source) => {
            if (source !== undefined) socket.proxySource = source;
            else socket.proxySourceUnknown = true;
            for (const listener of original) listener.call(server, socket);
          },
          () => socket.destroy(),
        )
        .finally(() => awaitingHeader.delete(socket));
    });
    return server;
  };
}

/** Reads and strips the PROXY header; resolves to the source address (undefined for LOCAL/UNKNOWN). */
function readProxyHeader(socket: Socket): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error('PROXY header timeout')), HEADER_TIMEOUT_MS);
    const finish = (error?: Error, source?: string) => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('error', onError);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      if (error) reject(error);
      else resolve(source);
    };
    const onError = (error: Error) => finish(error);
    const onEnd = () => finish(new Error('connection closed before the PROXY header'));
    const onClose = () => finish(new Error('connection closed before the PROXY header'));
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        buffered = Buffer.concat([buffered, chunk]);
        const result = parseProxyHeader(buffered);
        if (result.status === 'incomplete') {
          if (buffered.length > MAX_HEADER_BYTES) return finish(new Error('PROXY header too long'));
          continue;
        }
        if (result.status === 'invalid') return finish(new Error(`invalid PROXY header: ${result.reason}`));
        const rest = buffered.subarray(result.consumed);
        if (rest.length > 0) socket.unshift(rest);
        return finish(undefined, result.source?.address);
      }
    };
    socket.on('readable', onReadable);
    socket.on('error', onError);
    socket.on('end', onEnd);
    socket.on('close', onClose);
  });
}
