import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { ADMIN_AUTH } from './server.js';

/** Media types, spelled out here so tests do not trust the implementation's own constants. */
export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** The OCI empty descriptor's content (`{}`) and digest, fixed by the image-spec. */
export const EMPTY_JSON = Buffer.from('{}');
export const EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

/** `RequestInit` plus `anonymous: true` to send no credentials. */
export type V2RequestInit = RequestInit & { anonymous?: boolean };

/**
 * `fetch` for the data plane: sends the test owner's credentials (`ADMIN_AUTH`) unless the request
 * sets its own `Authorization` or asks to be `anonymous`.
 */
export function v2fetch(url: string | URL, init: V2RequestInit = {}): Promise<Response> {
  const { anonymous, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (!anonymous && !headers.has('authorization')) headers.set('Authorization', ADMIN_AUTH);
  return fetch(url, { ...rest, headers });
}

/** `algorithm:hex` digest of some bytes. */
export function digestOf(data: Uint8Array | string, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Random bytes, so every test's blobs are distinct from every other test's. */
export function randomBlob(size = 64): Buffer {
  return randomBytes(size);
}

/** The descriptor of `content` under `mediaType`. */
export function descriptorOf(
  mediaType: string,
  content: Uint8Array,
  extra: Partial<Descriptor> = {},
): Descriptor {
  return { mediaType, digest: digestOf(content), size: content.length, ...extra };
}

/** Bytes as a fetch body (fetch's types want an ArrayBuffer-backed view, not a Buffer). */
export function bytes(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(data);
}

/** Resolves a (possibly relative) `Location` against the server's base URL. */
export function absolute(base: string, location: string | null): string {
  assert.ok(location, 'response must carry a Location header');
  return new URL(location, base).href;
}

/** Pushes a blob monolithically (`POST ?digest=`) and asserts 201; returns its digest. */
export async function pushBlob(base: string, repo: string, content: Uint8Array): Promise<string> {
  const digest = digestOf(content);
  const res = await v2fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: bytes(content),
  });
  assert.equal(res.status, 201, `pushing blob to ${repo}: ${await res.text()}`);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  return digest;
}

/** Opens an upload session and returns its absolute upload URL. */
export async function startUpload(base: string, repo: string): Promise<string> {
  const res = await v2fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(res.status, 202, `starting an upload in ${repo}: ${await res.text()}`);
  return absolute(base, res.headers.get('location'));
}

/** Appends `url` with a query parameter, whether or not it already has a query. */
export function withQuery(url: string, name: string, value: string): string {
  const u = new URL(url);
  u.searchParams.append(name, value);
  return u.href;
}

/** PUTs a manifest (object, string or exact bytes) and returns the raw response. */
export async function putManifest(
  base: string,
  repo: string,
  reference: string,
  manifest: object | string | Buffer,
  contentType: string | undefined = MT.ociManifest,
): Promise<Response> {
  const body = Buffer.isBuffer(manifest)
    ? manifest
    : Buffer.from(typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  return v2fetch(`${base}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    headers: contentType === undefined ? {} : { 'Content-Type': contentType },
    body: bytes(body),
  });
}

/** A manifest pushed to the registry: its exact bytes, digest and descriptor. */
export interface PushedManifest {
  bytes: Buffer;
  digest: string;
  descriptor: Descriptor;
}

/** PUTs a manifest, asserts 201 and the returned digest, and returns what was stored. */
export async function pushManifest(
  base: string,
  repo: string,
  reference: string | undefined,
  manifest: object | Buffer,
  contentType: string = MT.ociManifest,
): Promise<PushedManifest> {
  const bytes = Buffer.isBuffer(manifest) ? manifest : Buffer.from(JSON.stringify(manifest));
  const digest = digestOf(bytes);
  const res = await putManifest(base, repo, reference ?? digest, bytes, contentType);
  assert.equal(res.status, 201, `pushing manifest to ${repo}: ${await res.text()}`);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  return { bytes, digest, descriptor: { mediaType: contentType, digest, size: bytes.length } };
}

/** Options for building an image manifest. */
export interface ImageOptions {
  mediaType?: string;
  configMediaType?: string;
  layerMediaType?: string;
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
  layers?: number;
}

/** An image manifest document over the given config and layers. */
export function imageManifest(
  config: Descriptor,
  layers: Descriptor[],
  options: Pick<ImageOptions, 'mediaType' | 'subject' | 'artifactType' | 'annotations'> = {},
): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: options.mediaType ?? MT.ociManifest,
    ...(options.artifactType !== undefined ? { artifactType: options.artifactType } : {}),
    config,
    layers,
    ...(options.subject ? { subject: options.subject } : {}),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
}

/** Pushes random config and layer blobs and an image manifest over them (tagged when `tag` is given). */
export async function pushImage(
  base: string,
  repo: string,
  tag?: string,
  options: ImageOptions = {},
): Promise<PushedManifest & { config: Descriptor; layers: Descriptor[] }> {
  const docker = options.mediaType === MT.dockerManifest;
  const configBytes = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBlob(8).toString('hex') }),
  );
  await pushBlob(base, repo, configBytes);
  const config = descriptorOf(
    options.configMediaType ?? (docker ? MT.dockerConfig : MT.ociConfig),
    configBytes,
  );
  const layers: Descriptor[] = [];
  for (let i = 0; i < (options.layers ?? 1); i++) {
    const layer = randomBlob(100 + i);
    await pushBlob(base, repo, layer);
    layers.push(descriptorOf(options.layerMediaType ?? (docker ? MT.dockerLayer : MT.ociLayer), layer));
  }
  const manifest = imageManifest(config, layers, options);
  const pushed = await pushManifest(base, repo, tag, manifest, options.mediaType ?? MT.ociManifest);
  return { ...pushed, config, layers };
}

/** Pushes an artifact manifest (empty config, one small layer) whose subject is `subject`. */
export async function pushArtifact(
  base: string,
  repo: string,
  subject: Descriptor,
  artifactType: string,
  annotations?: Record<string, string>,
): Promise<PushedManifest> {
  await pushBlob(base, repo, EMPTY_JSON);
  const layer = Buffer.from(`payload ${randomBlob(8).toString('hex')}`);
  await pushBlob(base, repo, layer);
  const manifest = imageManifest(
    { mediaType: MT.ociEmpty, digest: EMPTY_DIGEST, size: 2 },
    [descriptorOf('application/octet-stream', layer)],
    { artifactType, subject, ...(annotations ? { annotations } : {}) },
  );
  return pushManifest(base, repo, undefined, manifest);
}

/** An index document over child manifests. */
export function indexManifest(
  manifests: Descriptor[],
  mediaType: string = MT.ociIndex,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { schemaVersion: 2, mediaType, manifests, ...extra };
}

/** The body of an OCI error response. */
export interface OciErrorBody {
  errors: { code: string; message: string; detail?: unknown }[];
}

/**
 * Asserts an OCI error response: status, JSON content type and `{"errors":[{code,message}]}` with
 * `code` first. Returns the body for further checks.
 */
export async function expectError(res: Response, status: number, code: string): Promise<OciErrorBody> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(text) as OciErrorBody;
  assertErrorShape(body);
  assert.equal(body.errors[0]!.code, code, text);
  return body;
}

/** Asserts that a parsed body is a well-formed OCI error body. */
export function assertErrorShape(body: unknown): asserts body is OciErrorBody {
  assert.ok(body && typeof body === 'object' && Array.isArray((body as OciErrorBody).errors), 'errors array');
  const errors = (body as OciErrorBody).errors;
  assert.ok(errors.length > 0, 'at least one error');
  for (const error of errors) {
    assert.equal(typeof error.code, 'string');
    assert.match(error.code, /^[A-Z_]+$/);
    assert.equal(typeof error.message, 'string');
  }
}

/** A response read whole over node:http. */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Options of a raw request: anything fetch will not let a test set (Host, odd framing). */
export interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string | Buffer[];
  /** Send the body with chunked transfer encoding, one write per chunk. */
  chunked?: boolean;
  /** Send no credentials (by default `/v2/` requests carry `ADMIN_AUTH`). */
  anonymous?: boolean;
}

/** One HTTP request over a fresh loopback connection, with full control over headers and framing. */
export function rawRequest(base: string, options: RawRequest): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: withOwnerAuth(options.path, options.headers, options.anonymous),
        agent: false,
        setHost: options.headers?.Host === undefined && options.headers?.host === undefined,
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
    req.setTimeout(10_000, () =>
      req.destroy(new Error(`request timed out: ${options.method} ${options.path}`)),
    );
    req.on('error', reject);
    const parts =
      options.body === undefined ? [] : Array.isArray(options.body) ? options.body : [options.body];
    if (options.chunked) req.setHeader('Transfer-Encoding', 'chunked');
    for (const part of parts) req.write(part);
    req.end();
  });
}

function withOwnerAuth(
  path: string,
  headers: Record<string, string | number> | undefined,
  anonymous = false,
): Record<string, string | number> | undefined {
  if (anonymous || !path.startsWith('/v2')) return headers;
  const has = Object.keys(headers ?? {}).some((name) => name.toLowerCase() === 'authorization');
  return has ? headers : { ...headers, Authorization: ADMIN_AUTH };
}

/** Parses a raw response body as an OCI error and checks its code. */
export function expectRawError(res: RawResponse, status: number, code: string): OciErrorBody {
  assert.equal(res.status, status, res.body.toString());
  const body = JSON.parse(res.body.toString()) as unknown;
  assertErrorShape(body);
  assert.equal(body.errors[0]!.code, code);
  return body;
}
