import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { download, expectStatus, headerOf, send } from './http.js';
import { MiB } from './options.js';
import { cpuSeconds } from './proc.js';
import type { Payload } from './payload.js';
import type { Target } from './targets.js';

/** One timed transfer. */
export interface Transfer {
  bytes: number;
  seconds: number;
  mibPerSecond: number;
  /** CPU the registry process spent on it, in milliseconds per MiB (less sensitive to a busy machine). */
  serverCpuMsPerMiB?: number | undefined;
}

const UPLOAD_TIMEOUT_MS = 10 * 60_000;

/**
 * Monolithic push as distribution 2.8 supports it: `POST /blobs/uploads/` opens a session, then one
 * `PUT <location>?digest=` carries the whole body. Timed from the POST to the PUT's 201.
 */
export async function pushPostPut(target: Target, repository: string, payload: Payload): Promise<Transfer> {
  const started = performance.now();
  const cpu = cpuSeconds(target.pid);
  const opened = await send(`${target.url}/v2/${repository}/blobs/uploads/`, {
    method: 'POST',
    headers: { 'Content-Length': '0' },
  });
  expectStatus(opened, 202, `${target.name} POST upload`);
  const location = headerOf(opened, 'location');
  if (!location) throw new Error(`${target.name} POST upload: no Location header`);
  const url = new URL(location, target.url);
  url.searchParams.set('digest', payload.digest);
  const committed = await send(url, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(payload.size) },
    body: payload.stream(),
    timeoutMs: UPLOAD_TIMEOUT_MS,
  });
  expectStatus(committed, 201, `${target.name} PUT upload`);
  return transfer(payload.size, performance.now() - started, target.pid, cpu);
}

/** Single-request monolithic push: `POST /blobs/uploads/?digest=` with the body (Berth only). */
export async function pushSinglePost(
  target: Target,
  repository: string,
  payload: Payload,
): Promise<Transfer> {
  const started = performance.now();
  const cpu = cpuSeconds(target.pid);
  const committed = await send(
    `${target.url}/v2/${repository}/blobs/uploads/?digest=${encodeURIComponent(payload.digest)}`,
    {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(payload.size) },
      body: payload.stream(),
      timeoutMs: UPLOAD_TIMEOUT_MS,
    },
  );
  expectStatus(committed, 201, `${target.name} POST ?digest=`);
  return transfer(payload.size, performance.now() - started, target.pid, cpu);
}

/** `GET` of a blob, body consumed and discarded. */
export async function pull(target: Target, repository: string, payload: Payload): Promise<Transfer> {
  const started = performance.now();
  const cpu = cpuSeconds(target.pid);
  const { status, bytes } = await download(`${target.url}/v2/${repository}/blobs/${payload.digest}`);
  if (status !== 200 || bytes !== payload.size) {
    throw new Error(`${target.name} GET blob: HTTP ${status}, ${bytes} of ${payload.size} bytes`);
  }
  return transfer(bytes, performance.now() - started, target.pid, cpu);
}

/**
 * Flushes dirty pages so one registry's unsynced writes are not paid for by the next one's fsync.
 * Bounded: `sync` is given 60 s.
 */
export function settleDisk(): void {
  try {
    execFileSync('sync', { timeout: 60_000 });
  } catch {
    // best effort: the numbers are only a little noisier without it
  }
}

/** The run with the highest throughput. */
export function best(runs: Transfer[]): Transfer {
  return runs.reduce((a, b) => (b.mibPerSecond > a.mibPerSecond ? b : a));
}

function transfer(bytes: number, ms: number, pid: number, cpuBefore: number | undefined): Transfer {
  const seconds = ms / 1000;
  const cpuAfter = cpuSeconds(pid);
  const cpuMs = cpuBefore !== undefined && cpuAfter !== undefined ? (cpuAfter - cpuBefore) * 1000 : undefined;
  return {
    bytes,
    seconds,
    mibPerSecond: bytes / MiB / seconds,
    serverCpuMsPerMiB: cpuMs === undefined ? undefined : cpuMs / (bytes / MiB),
  };
}
