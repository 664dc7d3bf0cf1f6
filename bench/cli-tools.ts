// The command-line clients of the benchmark: curl for blob transfers and wrk for manifest load. Native
// clients leave the two cores to the servers far more than a Node client does, so the figures show
// the servers' differences rather than the client's ceiling.

import { execFile, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, openSync, closeSync, writeSync } from 'node:fs';
import { expectStatus, send } from './http.js';
import { preciseCpuSeconds as cpuSeconds } from './proc.js';
import type { Target } from './targets.js';

/** One timed curl transfer, with the registry's CPU over it. */
export interface CliTransfer {
  bytes: number;
  seconds: number;
  /** Decimal megabytes per second, as the issue's table states them. */
  mbPerSecond: number;
  /** CPU the registry process spent, in milliseconds per MiB moved. */
  serverCpuMsPerMiB: number | undefined;
  /** Push only, when a `durable` step was given: the throughput including it. */
  durableMbPerSecond?: number;
}

/** One wrk run. */
export interface WrkResult {
  requestsPerSecond: number;
  requests: number;
  seconds: number;
  non2xx: number;
  socketErrors: number;
  latencyP99Ms: number | undefined;
  /** CPU the registry process spent per request, in microseconds. */
  serverCpuUsPerRequest: number | undefined;
}

const MiB = 1024 * 1024;
const TRANSFER_TIMEOUT_MS = 10 * 60_000;

/** Whether curl and wrk are on the PATH. */
export function cliToolsInstalled(): { curl: boolean; wrk: boolean } {
  const has = (tool: string) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).error === undefined;
  return { curl: has('curl'), wrk: has('wrk') };
}

/**
 * Headers that authorise the bench against one target: for Berth a Bearer token from its token
 * endpoint (fetched once and renewed before it expires), nothing for distribution (no auth configured).
 */
export class BenchAuth {
  private token: { value: string; renewAt: number } | undefined;

  constructor(
    private readonly target: Target,
    private readonly basic: string | undefined,
    private readonly repositories: string[],
  ) {}

  /** `['-H', 'Authorization: Bearer …']` for curl/wrk, or nothing. */
  async headerArgs(): Promise<string[]> {
    const value = await this.authorization();
    return value ? ['-H', `Authorization: ${value}`] : [];
  }

  /** The `Authorization` value, or undefined when the target runs without auth. */
  async authorization(): Promise<string | undefined> {
    if (this.target.name !== 'berth' || !this.basic) return undefined;
    if (!this.token || Date.now() >= this.token.renewAt) {
      const scopes = this.repositories.map((r) => `scope=${encodeURIComponent(`repository:${r}:pull,push`)}`);
      const issued = await send(
        `${this.target.url}/oauth2/token?service=default.localhost&${scopes.join('&')}`,
        {
          headers: { Authorization: this.basic },
        },
      );
      expectStatus(issued, 200, 'berth token');
      const body = JSON.parse(issued.body.toString()) as { token: string; expires_in?: number };
      const lifetime = (body.expires_in ?? 300) * 1000;
      this.token = { value: `Bearer ${body.token}`, renewAt: Date.now() + lifetime / 2 };
    }
    return this.token.value;
  }
}

/**
 * A file the bench pushes with curl (`-T`, streamed from disk): its first 32 bytes are rewritten
 * before each push, so every push is a new blob (registries skip content they already have).
 */
export class PushFile {
  constructor(
    readonly path: string,
    readonly size: number,
  ) {}

  /** Makes the file a new blob and returns its digest (the whole file is re-hashed, from page cache). */
  async renew(): Promise<string> {
    const fd = openSync(this.path, 'r+');
    try {
      writeSync(fd, randomBytes(32), 0, 32, 0);
    } finally {
      closeSync(fd);
    }
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(this.path, { highWaterMark: 4 * MiB }))
      hash.update(chunk as Buffer);
    return `sha256:${hash.digest('hex')}`;
  }
}

/** Runs curl; resolves to its `-w` output. Bounded by `timeoutMs`. */
async function curl(args: string[], timeoutMs = TRANSFER_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['--silent', '--show-error', '--noproxy', '*', ...args],
      { timeout: timeoutMs, maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`curl failed: ${stderr.trim() || error.message}`));
        else resolve(stdout);
      },
    );
  });
}

/**
 * Monolithic push as distribution 2.8 supports it: `POST …/uploads/` (curl), then `PUT <location>
 * ?digest=` with the file as the body (curl `-T`, no `Expect: 100-continue` round trip). The time is
 * the sum of both requests' `time_total`, so curl's start-up is not counted.
 */
export async function curlPush(
  target: Target,
  auth: BenchAuth,
  repository: string,
  file: PushFile,
  digest: string,
  /** Runs after the PUT's 201 and is timed apart (an fsync, for equal durability with Berth). */
  durable?: () => void,
): Promise<CliTransfer> {
  const headers = await auth.headerArgs();
  const cpuBefore = cpuSeconds(target.pid);
  const opened = await curl([
    ...headers,
    '-X',
    'POST',
    '-H',
    'Content-Length: 0',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{time_total} %header{location}',
    `${target.url}/v2/${repository}/blobs/uploads/`,
  ]);
  const [openStatus, openSeconds, location] = opened.trim().split(' ');
  if (openStatus !== '202' || !location) throw new Error(`${target.name} POST upload: ${opened.trim()}`);
  const url = new URL(location, target.url);
  url.searchParams.set('digest', digest);
  const put = await curl([
    ...headers,
    '-T',
    file.path,
    '-H',
    'Expect:',
    '-H',
    'Content-Type: application/octet-stream',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{time_total} %{size_upload}',
    url.href,
  ]);
  const [putStatus, putSeconds, uploaded] = put.trim().split(' ');
  if (putStatus !== '201' || Number(uploaded) !== file.size)
    throw new Error(`${target.name} PUT upload: ${put.trim()}`);
  const cpuAfter = cpuSeconds(target.pid);
  const seconds = Number(openSeconds) + Number(putSeconds);
  const result = transfer(file.size, seconds, cpuBefore, cpuAfter);
  if (durable) {
    const started = performance.now();
    durable();
    result.durableMbPerSecond = file.size / 1e6 / (seconds + (performance.now() - started) / 1000);
  }
  return result;
}

/** `GET` of a blob with curl, body to /dev/null; `range` is an optional `Range` value. */
export async function curlPull(
  target: Target,
  auth: BenchAuth,
  repository: string,
  digest: string,
  size: number,
): Promise<CliTransfer> {
  const headers = await auth.headerArgs();
  const cpuBefore = cpuSeconds(target.pid);
  const out = await curl([
    ...headers,
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{time_total} %{size_download}',
    `${target.url}/v2/${repository}/blobs/${digest}`,
  ]);
  const cpuAfter = cpuSeconds(target.pid);
  const [status, seconds, downloaded] = out.trim().split(' ');
  if (status !== '200' || Number(downloaded) !== size)
    throw new Error(`${target.name} GET blob: ${out.trim()} (expected ${size} bytes)`);
  return transfer(size, Number(seconds), cpuBefore, cpuAfter);
}

/**
 * `count` GETs of one blob at once (curl `--parallel`), bodies discarded. Resolves when all finished;
 * rejects if any did not return the whole blob.
 */
export async function curlParallelPulls(
  target: Target,
  auth: BenchAuth,
  repository: string,
  digest: string,
  size: number,
  count: number,
): Promise<void> {
  const headers = await auth.headerArgs();
  const url = `${target.url}/v2/${repository}/blobs/${digest}`;
  const each = Array.from({ length: count }, () => ['-o', '/dev/null', url]).flat();
  const out = await curl([
    '--parallel',
    '--parallel-immediate',
    '--parallel-max',
    String(count),
    ...headers,
    '-w',
    '%{http_code} %{size_download}\\n',
    ...each,
  ]);
  const lines = out.trim().split('\n');
  const bad = lines.filter((line) => line !== `200 ${size}`);
  if (lines.length !== count || bad.length > 0)
    throw new Error(`${target.name} parallel GETs: ${bad.length} of ${lines.length} incomplete (${bad[0]})`);
}

/** wrk against one URL: `connections` connections on 2 threads for `seconds`, with `headers`. */
export async function wrk(
  target: Target,
  url: string,
  headers: string[],
  connections: number,
  seconds: number,
): Promise<WrkResult> {
  const cpuBefore = cpuSeconds(target.pid);
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      'wrk',
      ['-t', '2', '-c', String(connections), '-d', `${seconds}s`, '--latency', ...headers, url],
      { timeout: (seconds + 30) * 1000, maxBuffer: 1024 * 1024 },
      (error, out, stderr) => {
        if (error) reject(new Error(`wrk failed: ${stderr.trim() || error.message}`));
        else resolve(out);
      },
    );
  });
  const cpuAfter = cpuSeconds(target.pid);
  const number = (pattern: RegExp) => {
    const match = pattern.exec(stdout);
    return match ? Number(match[1]) : undefined;
  };
  const requests = number(/(\d+) requests in/) ?? 0;
  const elapsed = /requests in ([\d.]+)(ms|s|m)/.exec(stdout);
  const runSeconds = elapsed
    ? Number(elapsed[1]) * (elapsed[2] === 'ms' ? 0.001 : elapsed[2] === 'm' ? 60 : 1)
    : seconds;
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)/m.exec(stdout);
  const p99Ms = p99 ? Number(p99[1]) * (p99[2] === 'us' ? 0.001 : p99[2] === 's' ? 1000 : 1) : undefined;
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return {
    requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/) ?? 0,
    requests,
    seconds: runSeconds,
    non2xx: number(/Non-2xx or 3xx responses: (\d+)/) ?? 0,
    socketErrors: socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    latencyP99Ms: p99Ms,
    serverCpuUsPerRequest:
      cpuBefore !== undefined && cpuAfter !== undefined && requests > 0
        ? ((cpuAfter - cpuBefore) * 1e6) / requests
        : undefined,
  };
}

function transfer(
  bytes: number,
  seconds: number,
  cpuBefore: number | undefined,
  cpuAfter: number | undefined,
): CliTransfer {
  return {
    bytes,
    seconds,
    mbPerSecond: bytes / 1e6 / seconds,
    serverCpuMsPerMiB:
      cpuBefore !== undefined && cpuAfter !== undefined
        ? ((cpuAfter - cpuBefore) * 1000) / (bytes / MiB)
        : undefined,
  };
}

/**
 * What curl itself can push on this machine: `-T file` into a server (this process) that reads the
 * body and throws it away, neither hashing nor writing it. No registry can push faster through curl.
 */
export async function curlPushCeiling(file: PushFile): Promise<number> {
  const server = createServer((request, response) => {
    request.on('data', () => undefined);
    request.on('end', () => response.writeHead(201, { 'Content-Length': '0' }).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const out = await curl([
      '-T',
      file.path,
      '-H',
      'Expect:',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{time_total}',
      `http://127.0.0.1:${port}/sink`,
    ]);
    const [status, seconds] = out.trim().split(' ');
    if (status !== '201') throw new Error(`push ceiling: ${out.trim()}`);
    return file.size / 1e6 / Number(seconds);
  } finally {
    server.close();
    server.closeAllConnections();
  }
}
