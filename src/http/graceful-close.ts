import type { FastifyInstance } from 'fastify';

/** How long a closing server waits for requests in flight before it closes their connections. */
export const CLOSE_GRACE_MS = 5000;

/**
 * Makes `app.close()` finish promptly. Node closes idle keep-alive connections only once, when the
 * server starts closing; a connection still streaming a response then turns idle a moment later and
 * would hold the close until its keep-alive timeout (65 s). So keep closing idle ones until done, and
 * after a grace period close the rest too: a stalled upload must not hold a shutdown for its timeouts.
 */
export function closeIdleConnectionsWhileClosing(app: FastifyInstance): void {
  app.addHook('preClose', (done) => {
    const timer = setInterval(() => app.server.closeIdleConnections(), 50);
    const deadline = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
    deadline.unref();
    app.server.once('close', () => {
      clearInterval(timer);
      clearTimeout(deadline);
    });
    done();
  });
}
