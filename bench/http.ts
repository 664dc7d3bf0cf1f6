import http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A finished response with its (small) body collected. */
export interface SimpleResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A buffer, or a stream piped into the request (then `Content-Length` should be set). */
  body?: Buffer | Readable;
  timeoutMs?: number;
}

/** Largest response body collected by `send`; anything bigger is a bench bug, not a registry answer. */
const MAX_COLLECTED = 8 * 1024 * 1024;

// No keep-alive pool: each measured request opens its own connection, the same for both registries.
const agent = new http.Agent({ keepAlive: false });

/** `Authorization` values per origin: Berth's data plane needs the owner's credentials. */
const credentials = new Map<string, string>();

/** Sends `authorization` on every request to `origin` that does not carry its own. */
export function useCredentials(origin: string, authorization: string): void {
  credentials.set(new URL(origin).origin, authorization);
}

/** The `Authorization` registered for a URL's origin, if any. */
export function authorizationFor(url: string | URL): string | undefined {
  return credentials.get(new URL(url).origin);
}

function withCredentials(url: string | URL, headers: Record<string, string>): Record<string, string> {
  const authorization = authorizationFor(url);
  const has = Object.keys(headers).some((name) => name.toLowerCase() === 'authorization');
  return authorization && !has ? { ...headers, Authorization: authorization } : headers;
}

/** Sends one request and collects the response body. */
export async function send(url: string | URL, options: RequestOptions = {}): Promise<SimpleResponse> {
  const { method = 'GET', headers = {}, body, timeoutMs = 30_000 } = options;
  const signal = AbortSignal.timeout(timeoutMs);
  const requestHeaders = withCredentials(url, headers);
  if (Buffer.isBuffer(body)) requestHeaders['Content-Length'] = String(body.length);
  const request = http.request(url, { method, headers: requestHeaders, agent, signal });
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
  });
  let uploadError: unknown;
  if (body instanceof Readable) {
    // The registry may answer (e.g. 400) before reading everything; the response then wins.
    pipeline(body, request).catch((error: unknown) => {
      uploadError = error;
    });
  } else {
    request.end(body);
  }
  let incoming: http.IncomingMessage;
  try {
    incoming = await response;
  } catch (error) {
    throw new Error(`${method} ${String(url)} failed: ${(error as Error).message}`, {
      cause: uploadError ?? error,
    });
  }
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of incoming) {
    length += (chunk as Buffer).length;
    if (length > MAX_COLLECTED) throw new Error(`${method} ${String(url)}: response body too large`);
    chunks.push(chunk as Buffer);
  }
  return { status: incoming.statusCode ?? 0, headers: incoming.headers, body: Buffer.concat(chunks) };
}

/** GETs a URL and discards the body; resolves to its status and byte count. */
export async function download(
  url: string | URL,
  headers: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<{ status: number; bytes: number }> {
  const signal = AbortSignal.timeout(timeoutMs);
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers: withCredentials(url, headers), agent, signal }, (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      response.once('end', () => resolve({ status: response.statusCode ?? 0, bytes }));
      response.once('error', reject);
    });
    request.once('error', reject);
  });
}

/** Throws a readable error unless the response has the expected status. */
export function expectStatus(response: SimpleResponse, expected: number, what: string): void {
  if (response.status !== expected) {
    const text = response.body.toString('utf8').slice(0, 500);
    throw new Error(`${what}: expected HTTP ${expected}, got ${response.status}: ${text}`);
  }
}

/** The single value of a response header. */
export function headerOf(response: SimpleResponse, name: string): string | undefined {
  const value = response.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
