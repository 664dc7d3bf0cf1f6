import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RegistryService } from '../../registry/service.js';

/** What every data-plane handler gets: the request, the reply, which registry and repository, the service. */
export interface V2Context {
  request: FastifyRequest;
  reply: FastifyReply;
  registry: string;
  repository: string;
  query: URLSearchParams;
  service: RegistryService;
  /** The request body stream (use this, not `request.raw`: the network guard may cut it off). */
  body: Readable;
}

/** The single value of a request header (first of repeated ones). */
export function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Whether the request carries a body (a non-zero Content-Length, or chunked transfer encoding). */
export function hasBody(request: FastifyRequest): boolean {
  const length = header(request, 'content-length');
  if (length !== undefined) return length !== '0';
  return header(request, 'transfer-encoding') !== undefined;
}

/** The request's Content-Length as a number, if it has a valid one. */
export function contentLength(request: FastifyRequest): number | undefined {
  const length = header(request, 'content-length');
  return length !== undefined && /^\d{1,15}$/.test(length) ? Number(length) : undefined;
}
