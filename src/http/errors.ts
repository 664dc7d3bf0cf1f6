import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isStorageFull, OciError, storageFull } from '../errors/oci.js';

/**
 * The one place data-plane failures become responses: an `OciError` keeps its code and status;
 * fastify's own client errors (bad URL, bad header) become 400s; anything else is a 500 `UNKNOWN`
 * that names the request id and never leaks a stack trace.
 */
export function sendOciError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const oci = toOciError(error, request);
  if (oci.status === 507) request.log.warn({ err: error }, 'storage full');
  else if (oci.status >= 500) request.log.error({ err: error }, 'request failed');
  // A handler may have set a success response's headers before failing (a blob whose bytes vanished);
  // an error must not carry them, least of all a year-long Cache-Control on a 404.
  if (!reply.sent) for (const name of SUCCESS_HEADERS) reply.removeHeader(name);
  reply.code(oci.status).headers(oci.headers).header('Content-Type', 'application/json');
  if (request.method === 'HEAD') return void reply.send();
  reply.send(JSON.stringify(oci.toBody()));
}

const SUCCESS_HEADERS = [
  'cache-control',
  'etag',
  'docker-content-digest',
  'accept-ranges',
  'content-range',
  'content-length',
];

function toOciError(error: unknown, request: FastifyRequest): OciError {
  if (error instanceof OciError) return error;
  const status = (error as FastifyError | undefined)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = status === 413 ? 'SIZE_INVALID' : status === 405 ? 'UNSUPPORTED' : 'UNSUPPORTED';
    return new OciError(code, (error as Error).message, undefined, { status });
  }
  if (isStorageFull(error)) return storageFull();
  if (isClientAbort(error)) {
    return new OciError('BLOB_UPLOAD_INVALID', 'the request body ended before it was complete', undefined, {
      status: 400,
    });
  }
  return new OciError('UNKNOWN', 'internal error', { requestId: request.id });
}

function isClientAbort(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return (
    code === 'ECONNRESET' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    (error as Error | undefined)?.message === 'aborted'
  );
}
