import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { request as httpRequest } from 'node:http';
import type { RawResponse } from './oci.js';
import { ADMIN_AUTH, type TestBerth } from './server.js';

/** A management API response, read whole: status, headers and the parsed JSON body (if any). */
export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed JSON body (undefined when empty or not JSON); `any` keeps the assertions short. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** An `api(method, path, body?, auth?)` function bound to one server's management URL. */
export type Api = (
  method: string,
  path: string,
  body?: unknown,
  auth?: string | null,
) => Promise<ApiResponse>;

/**
 * Returns `api(method, path, body?, auth?)` for a server. `auth` defaults to the owner account;
 * pass `null` to send no Authorization header. A string body is sent verbatim (for malformed JSON).
 */
export function apiFor(berth: Pick<TestBerth, 'managementUrl'>): Api {
  return async (method, path, body, auth = ADMIN_AUTH) => {
    const headers: Record<string, string> = {};
    if (auth !== null) headers.Authorization = auth;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${berth.managementUrl}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    return { status: res.status, headers: res.headers, text, body: parsed };
  };
}

/** `Authorization` header value for an API key. */
export const bearer = (key: string): string => `Bearer ${key}`;

/** `Authorization` header value for Basic credentials. */
export const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

let counter = 0;
/** A registry name no other test uses: letters and digits only, 5-50 characters. */
export function uniqueName(prefix = 'reg'): string {
  counter += 1;
  return `${prefix}${counter}${randomBytes(3).toString('hex')}`;
}

/**
 * Asserts an ARM-shaped error: the status, `{ error: { code, message } }` with string fields, the
 * code, and (optionally) that the message matches. Returns the error object.
 */
export function expectApiError(
  res: ApiResponse,
  status: number,
  code: string,
  message?: RegExp | string,
): { code: string; message: string; target?: string } {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assertArmError(res.body);
  const error = (res.body as { error: { code: string; message: string; target?: string } }).error;
  assert.equal(error.code, code, res.text);
  if (message !== undefined) {
    if (typeof message === 'string') assert.ok(error.message.includes(message), `message: ${error.message}`);
    else assert.match(error.message, message);
  }
  return error;
}

/** Asserts the ARM error body shape `{ error: { code, message } }`. */
export function assertArmError(body: unknown): void {
  assert.ok(body && typeof body === 'object', `error body must be an object: ${JSON.stringify(body)}`);
  const error = (body as { error?: unknown }).error;
  assert.ok(error && typeof error === 'object', `error body must have 'error': ${JSON.stringify(body)}`);
  const { code, message } = error as { code?: unknown; message?: unknown };
  assert.equal(typeof code, 'string');
  assert.equal(typeof message, 'string');
  assert.ok((message as string).length > 0, 'message must not be empty');
}

/** Creates a registry with PUT and asserts 201; returns the resource. */
export async function createRegistry(
  api: Api,
  name: string,
  sku: 'Basic' | 'Standard' | 'Premium' = 'Premium',
  properties?: Record<string, unknown>,
) {
  const res = await api('PUT', `/api/registries/${name}`, {
    sku: { name: sku },
    ...(properties ? { properties } : {}),
  });
  assert.equal(res.status, 201, `creating ${name}: ${res.text}`);
  return res.body as { name: string; properties: Record<string, unknown> };
}

/** Creates an API key with a role (on one registry or `*`) and returns its id and secret. */
export async function createApiKey(
  api: Api,
  name: string,
  role: 'Owner' | 'Contributor' | 'Reader',
  registry?: string,
): Promise<{ id: string; key: string; auth: string }> {
  const res = await api('POST', '/api/apiKeys', { name, role, ...(registry ? { registry } : {}) });
  assert.equal(res.status, 201, `creating key ${name}: ${res.text}`);
  const { id, key } = res.body as { id: string; key: string };
  return { id, key, auth: bearer(key) };
}

/** Options of a data-plane request: a body, extra headers, and the source address to send from. */
export interface DataPlaneOptions {
  body?: Buffer;
  headers?: Record<string, string>;
  /** Local (source) address, e.g. 127.0.0.2: loopback accepts any 127/8 source on Linux. */
  from?: string;
  /** Send no credentials: by default the request carries the test owner's (`ADMIN_AUTH`). */
  anonymous?: boolean;
}

/** A data-plane request to the registry named by Host `<registry>.localhost` (node:http, explicit Host). */
export function dataPlane(
  berth: Pick<TestBerth, 'url'>,
  registry: string,
  method: string,
  path: string,
  options: DataPlaneOptions = {},
): Promise<RawResponse> {
  const url = new URL(berth.url);
  const { body } = options;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        agent: false,
        ...(options.from ? { localAddress: options.from } : {}),
        headers: {
          Host: `${registry}.localhost:${url.port}`,
          ...(body ? { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length } : {}),
          ...(options.anonymous ||
          Object.keys(options.headers ?? {}).some((name) => name.toLowerCase() === 'authorization')
            ? {}
            : { Authorization: ADMIN_AUTH }),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`request timed out: ${method} ${path}`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** `sha256:<hex>` of some bytes. */
export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Pushes a blob monolithically to a registry (by Host) and asserts 201; returns the digest. */
export async function pushBlobTo(
  berth: Pick<TestBerth, 'url'>,
  registry: string,
  repo: string,
  content: Buffer,
): Promise<string> {
  const digest = sha256(content);
  const res = await dataPlane(berth, registry, 'POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    body: content,
  });
  assert.equal(res.status, 201, `pushing a blob to ${registry}/${repo}: ${res.body.toString()}`);
  return digest;
}

/** Pushes a small image (config + one layer + manifest) under a tag; returns the manifest digest. */
export async function pushImageTo(
  berth: Pick<TestBerth, 'url'>,
  registry: string,
  repo: string,
  tag: string,
): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomHex() }));
  const layer = randomBytes(64);
  await pushBlobTo(berth, registry, repo, config);
  await pushBlobTo(berth, registry, repo, layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
          digest: sha256(layer),
          size: layer.length,
        },
      ],
    }),
  );
  const res = await dataPlane(berth, registry, 'PUT', `/v2/${repo}/manifests/${tag}`, {
    body: manifest,
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(res.status, 201, `pushing a manifest to ${registry}/${repo}:${tag}: ${res.body.toString()}`);
  return sha256(manifest);
}

function randomHex(): string {
  return randomBytes(8).toString('hex');
}

/** A loopback TCP port that was free a moment ago (bound, then released). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(port > 0);
  return port;
}

/** Resolves true when a TCP connection to host:port is accepted, false when refused (bounded wait). */
export function canConnect(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
