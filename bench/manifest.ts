import { createHash, randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { authorizationFor, expectStatus, headerOf, send } from './http.js';
import { cpuSeconds } from './proc.js';
import type { Target } from './targets.js';

/** Every manifest type a modern client accepts, as `docker pull` and containerd send them. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** The result of one autocannon run. */
export interface LoadResult {
  requestsPerSecond: number;
  total: number;
  seconds: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  errors: number;
  /** CPU the registry process spent per request, in microseconds. */
  serverCpuUsPerRequest?: number | undefined;
}

/** Pushes a small OCI image (config + one layer + manifest) and tags it; returns the manifest digest. */
export async function pushSmallImage(target: Target, repository: string, tag: string): Promise<string> {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const layer = randomBytes(4096);
  const configDigest = await pushSmallBlob(target, repository, config);
  const layerDigest = await pushSmallBlob(target, repository, layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length },
      ],
    }),
  );
  const put = await send(`${target.url}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  expectStatus(put, 201, `${target.name} PUT manifest`);
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  const got = await send(`${target.url}/v2/${repository}/manifests/${tag}`, {
    headers: { Accept: MANIFEST_ACCEPT },
  });
  expectStatus(got, 200, `${target.name} GET manifest`);
  if (headerOf(got, 'docker-content-digest') !== digest || !got.body.equals(manifest)) {
    throw new Error(`${target.name} GET manifest returned other content than was pushed`);
  }
  return digest;
}

/** `GET /v2/<repo>/manifests/<tag>` under load: a warm-up run (discarded), then the measured run. */
export async function manifestLoad(
  target: Target,
  repository: string,
  tag: string,
  options: { connections: number; seconds: number; warmupSeconds: number },
  /** The `Authorization` of every request: the target's own by default, `null` for none (anonymous). */
  authorization?: string | null,
): Promise<LoadResult> {
  const url = `${target.url}/v2/${repository}/manifests/${tag}`;
  const auth = authorization === undefined ? authorizationFor(url) : (authorization ?? undefined);
  const headers = { Accept: MANIFEST_ACCEPT, ...(auth ? { Authorization: auth } : {}) };
  await load(url, options.connections, options.warmupSeconds, headers);
  const cpuBefore = cpuSeconds(target.pid);
  const result = await load(url, options.connections, options.seconds, headers);
  const cpuAfter = cpuSeconds(target.pid);
  if (cpuBefore !== undefined && cpuAfter !== undefined && result.total > 0) {
    result.serverCpuUsPerRequest = ((cpuAfter - cpuBefore) * 1e6) / result.total;
  }
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(
      `${target.name} manifest GET: ${result.non2xx} non-2xx responses, ${result.errors} errors`,
    );
  }
  return result;
}

/** One autocannon run of GETs of `url` with `headers`. */
export async function load(
  url: string,
  connections: number,
  seconds: number,
  headers: Record<string, string>,
): Promise<LoadResult> {
  const result = await autocannon({ url, connections, duration: seconds, headers, timeout: 10 });
  return {
    requestsPerSecond: result.requests.total / result.duration,
    total: result.requests.total,
    seconds: result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** Pushes one blob (POST, then PUT ?digest=) and returns its digest. */
export async function pushSmallBlob(target: Target, repository: string, content: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
  const opened = await send(`${target.url}/v2/${repository}/blobs/uploads/`, {
    method: 'POST',
    headers: { 'Content-Length': '0' },
  });
  expectStatus(opened, 202, `${target.name} POST upload`);
  const url = new URL(headerOf(opened, 'location') ?? '', target.url);
  url.searchParams.set('digest', digest);
  const put = await send(url, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: content,
  });
  expectStatus(put, 201, `${target.name} PUT blob`);
  return digest;
}
