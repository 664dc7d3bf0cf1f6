import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set when the network guard refused the request (its log line is the denial log's, rate-limited). */
    networkDenied?: boolean;
  }
}

/**
 * The data plane's request log: one line per request, when it completes (with method, URL and
 * status), instead of fastify's two; requests the network guard refused write none here, because a
 * refused client could otherwise fill the server log at will (the denial log counts them, and writes
 * rate-limited lines per address).
 */
export class DataPlaneLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (error) return super.requestCompleted(error, request, reply);
    if (request.networkDenied) return;
    reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}
