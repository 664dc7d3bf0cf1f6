// What the network guard, sign-in and the manifest cache cost on the hottest request there is: manifest
// GET by tag, driven by wrk with 64 connections, in these modes, each on a fresh Berth process,
// alternated round by round so drift on a shared machine hits each alike:
//
//   baseline   anonymous pull on, network default action Allow, no rules: the least work Berth does
//              (it has no switch that turns sign-in off; the anonymous caller's check is what remains)
//   guard      the same with default action Deny and 100 IP rules, the client's address among them
//   bearer     a Bearer JWT from /oauth2/token on every request (rules off)
//   basic      the owner's Basic credentials on every request (rules off)
//   cold       baseline with the manifest cache off (registry.manifestCacheBytes 0)
//
// Reported per mode: req/s and the server's CPU µs per request (from /proc/<pid>/stat, steadier than
// wall time when other work shares the cores), medians over the rounds; then the guard's and each
// credential's cost against the baseline, with the ≤ 3% target, and the cache's gain.

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { authorizationFor, expectStatus, send } from './http.js';
import { MANIFEST_ACCEPT, pushSmallImage } from './manifest.js';
import { BERTH_START_NODE_ARGS } from './options.js';
import { cpuSeconds } from './proc.js';
import { startBerthProcess, type Target } from './targets.js';

const run = promisify(execFile);

/** A row for the bench table (the shape `bench/run.ts` takes from other modules). */
export interface HotPathRow {
  name: string;
  value: number;
  unit: string;
  target?: string;
}

/** One wrk run: throughput, and the server's CPU per request over the same seconds. */
export interface WrkResult {
  requestsPerSecond: number;
  requests: number;
  non2xx: number;
  socketErrors: number;
  serverCpuUsPerRequest: number | undefined;
}

const MODES = ['baseline', 'guard', 'bearer', 'basic', 'cold'] as const;
type Mode = (typeof MODES)[number];

const REPOSITORY = 'bench/hot';
const TAG = 'v1';
const TARGET_PERCENT = 3;

/** wrk's figures from its text report. */
export function parseWrk(output: string): Omit<WrkResult, 'serverCpuUsPerRequest'> {
  const number = (re: RegExp) => Number(re.exec(output)?.[1] ?? NaN);
  const requests = number(/(\d+) requests in/);
  const requestsPerSecond = number(/Requests\/sec:\s+([\d.]+)/);
  if (!Number.isFinite(requests) || !Number.isFinite(requestsPerSecond))
    throw new Error(`unexpected wrk output: ${output.slice(0, 500)}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  return {
    requests,
    requestsPerSecond,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0),
    socketErrors: socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  };
}

/** `wrk -c<connections>` GETs of `url` for `seconds`, measuring `pid`'s CPU over the same time. */
export async function wrk(
  url: string,
  headers: Record<string, string>,
  options: { connections: number; seconds: number },
  pid: number,
): Promise<WrkResult> {
  const args = ['-t2', `-c${options.connections}`, `-d${options.seconds}s`, '--timeout', '10s'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  const before = cpuSeconds(pid);
  const { stdout } = await run('wrk', [...args, url], { timeout: (options.seconds + 30) * 1000 });
  const after = cpuSeconds(pid);
  const result = parseWrk(stdout);
  return {
    ...result,
    serverCpuUsPerRequest:
      before !== undefined && after !== undefined && result.requests > 0
        ? ((after - before) * 1e6) / result.requests
        : undefined,
  };
}

async function patchRegistry(target: Target, properties: Record<string, unknown>): Promise<void> {
  const management = target.management!;
  const response = await fetch(`${management.url}/api/registries/default`, {
    method: 'PATCH',
    headers: { authorization: management.authorization, 'content-type': 'application/json' },
    body: JSON.stringify({ properties }),
  });
  if (response.status !== 200) throw new Error(`PATCH default: ${response.status} ${await response.text()}`);
}

/** 99 public IPv4/IPv6 ranges nobody here comes from, plus the loopback address the load comes from. */
function hundredRules(): { action: 'Allow'; value: string }[] {
  const rules = [{ action: 'Allow' as const, value: '127.0.0.1' }];
  for (let i = 0; rules.length < 100; i++)
    rules.push({
      action: 'Allow',
      value: i % 2 === 0 ? `${20 + (i % 180)}.${i}.0.0/16` : `2001:db8:${i}::/48`,
    });
  return rules;
}

async function bearerToken(target: Target): Promise<string> {
  const issued = await send(
    `${target.url}/oauth2/token?service=default.localhost&scope=repository:${REPOSITORY}:pull`,
  );
  expectStatus(issued, 200, 'token');
  return (JSON.parse(issued.body.toString()) as { token: string }).token;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** Every mode's runs, from alternating rounds. */
export type HotPathRuns = Record<Mode, WrkResult[]>;

/**
 * Runs the modes round by round, each on a Berth process of its own, started for that run and stopped
 * after it, so no mode inherits another's heap, JIT state or cache invalidations (measured in one
 * process, the modes after the guard's two registry PATCHes read costs that separate processes do
 * not show); returns every run.
 */
export async function measureHotPath(
  root: string,
  work: string,
  options: {
    connections: number;
    seconds: number;
    warmupSeconds: number;
    rounds: number;
    nodeArgs: string[];
  },
  progress: (message: string) => void,
): Promise<HotPathRuns> {
  mkdirSync(work, { recursive: true });
  const coldConfig = join(work, 'cold.json');
  writeFileSync(coldConfig, JSON.stringify({ registry: { manifestCacheBytes: 0 } }));
  const runs = Object.fromEntries(MODES.map((mode) => [mode, [] as WrkResult[]])) as HotPathRuns;
  const rules = hundredRules();
  const accept = { Accept: MANIFEST_ACCEPT };
  for (let round = 0; round < options.rounds; round++) {
    for (const mode of MODES) {
      const server = await startBerthProcess(
        root,
        dir(work, `${mode}-${round}`),
        options.nodeArgs,
        mode === 'cold' ? coldConfig : undefined,
      );
      try {
        await pushSmallImage(server, REPOSITORY, TAG);
        await patchRegistry(server, {
          anonymousPullEnabled: true,
          networkRuleSet:
            mode === 'guard'
              ? { defaultAction: 'Deny', ipRules: rules }
              : { defaultAction: 'Allow', ipRules: [] },
        });
        const headers: Record<string, string> =
          mode === 'bearer'
            ? { ...accept, Authorization: `Bearer ${await bearerToken(server)}` }
            : mode === 'basic'
              ? { ...accept, Authorization: authorizationFor(server.url)! }
              : accept;
        const url = `${server.url}/v2/${REPOSITORY}/manifests/${TAG}`;
        if (options.warmupSeconds > 0)
          await wrk(
            url,
            headers,
            { connections: options.connections, seconds: options.warmupSeconds },
            server.pid,
          );
        const result = await wrk(url, headers, options, server.pid);
        if (result.non2xx > 0 || result.socketErrors > 0)
          throw new Error(
            `${mode}: ${result.non2xx} non-2xx responses, ${result.socketErrors} socket errors`,
          );
        runs[mode].push(result);
        progress(
          `hot path round ${round + 1} ${mode}: ${result.requestsPerSecond.toFixed(0)} req/s, ` +
            `${result.serverCpuUsPerRequest?.toFixed(1) ?? '?'} µs CPU/request`,
        );
      } finally {
        await server.stop();
      }
    }
  }
  return runs;
}

/** Medians per mode, and each layer's cost against the baseline, as table rows. */
export function hotPathRows(runs: HotPathRuns): HotPathRow[] {
  const rps = (mode: Mode) => median(runs[mode].map((r) => r.requestsPerSecond));
  const cpu = (mode: Mode) =>
    median(runs[mode].map((r) => r.serverCpuUsPerRequest).filter((v): v is number => v !== undefined));
  const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
  const rows: HotPathRow[] = [];
  for (const mode of MODES) {
    rows.push({
      name: `manifest GET by tag (wrk, 64 conn.): ${mode}`,
      value: Math.round(rps(mode)),
      unit: 'req/s',
    });
    rows.push({ name: `manifest GET server CPU: ${mode}`, value: round(cpu(mode)), unit: 'µs/req' });
  }
  const cost = (mode: Mode, label: string) => {
    rows.push({
      name: `${label} cost, req/s`,
      value: round((1 - rps(mode) / rps('baseline')) * 100, 2),
      unit: '%',
      target: `≤ ${TARGET_PERCENT}%`,
    });
    rows.push({
      name: `${label} cost, CPU/request`,
      value: round((cpu(mode) / cpu('baseline') - 1) * 100, 2),
      unit: '%',
      target: `≤ ${TARGET_PERCENT}%`,
    });
  };
  cost('guard', 'network guard (100 rules)');
  cost('bearer', 'sign-in (Bearer JWT)');
  cost('basic', 'sign-in (Basic)');
  rows.push({
    name: 'manifest cache: warm ÷ cold req/s',
    value: round(rps('baseline') / rps('cold'), 2),
    unit: '×',
  });
  rows.push({
    name: 'manifest cache: CPU saved per request',
    value: round(cpu('cold') - cpu('baseline')),
    unit: 'µs/req',
  });
  return rows;
}

/** The whole measurement for `bench/run.ts`: rows for its table. */
export async function benchHotPath(
  root: string,
  work: string,
  options: { quick: boolean; connections: number; berthNodeArgs: string[] },
  progress: (message: string) => void,
): Promise<HotPathRow[]> {
  const runs = await measureHotPath(
    root,
    work,
    {
      connections: options.connections,
      seconds: options.quick ? 2 : 10,
      warmupSeconds: options.quick ? 0.5 : 2,
      rounds: options.quick ? 1 : 3,
      nodeArgs: options.berthNodeArgs,
    },
    progress,
  );
  return hotPathRows(runs);
}

function dir(parent: string, name: string): string {
  const path = join(parent, name);
  mkdirSync(path, { recursive: true });
  return path;
}

// `node --import tsx bench/hot-path.ts` (after `npm run build`): this measurement alone. BENCH_ROOT
// points it at another checkout's build (to compare before and after), BENCH_SECONDS and BENCH_ROUNDS
// size it, BENCH_BERTH_NODE_ARGS passes flags (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-hot-'));
  const root = process.env.BENCH_ROOT ?? fileURLToPath(new URL('..', import.meta.url));
  try {
    const runs = await measureHotPath(
      root,
      work,
      {
        connections: 64,
        seconds: Number(process.env.BENCH_SECONDS ?? 10),
        warmupSeconds: 2,
        rounds: Number(process.env.BENCH_ROUNDS ?? 3),
        nodeArgs: (process.env.BENCH_BERTH_NODE_ARGS ?? BERTH_START_NODE_ARGS).split(/\s+/).filter(Boolean),
      },
      (m) => process.stderr.write(`bench: ${m}\n`),
    );
    for (const row of hotPathRows(runs))
      process.stdout.write(
        `${row.name.padEnd(56)} ${String(row.value).padStart(9)} ${row.unit}${row.target ? `  (target ${row.target})` : ''}\n`,
      );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
