// The headline comparison of issue 13: Berth (sign-in on, a Bearer token on every request) against
// CNCF distribution (no auth), both driven by curl (blobs) and wrk (manifests), rounds alternating
// between the servers, medians of the rounds, with the servers' CPU beside wall clock.

import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { settleDisk } from './blob.js';
import {
  BenchAuth,
  curlParallelPulls,
  curlPull,
  curlPush,
  curlPushCeiling,
  PushFile,
  wrk,
  type CliTransfer,
  type WrkResult,
} from './cli-tools.js';
import { MANIFEST_ACCEPT, pushSmallImage } from './manifest.js';
import { MiB, type BenchOptions } from './options.js';
import { readMemory } from './proc.js';
import type { Row } from './report.js';
import type { Target } from './targets.js';

/** What one registry measured in the curl/wrk comparison. */
export interface CliResults {
  push: CliTransfer[];
  pull: CliTransfer[];
  manifest: WrkResult[];
  /** RSS growth (MiB) while `parallelPulls` clients each GET the whole blob at once. */
  /** Berth's entry only: curl into a server that discards the body, per round (MB/s). */
  pushCeiling?: number[];
  parallelPullRss?: {
    baselineMiB: number;
    maxMiB: number;
    growthMiB: number;
    peakMiB: number;
    seconds: number;
  };
}

const BLOB_REPOSITORY = 'bench/cli-blob';
const IMAGE_REPOSITORY = 'bench/cli-image';

/** A started registry and how the bench reaches it. */
export interface CliTarget {
  target: Target;
  /** Berth: the owner's Basic credentials, exchanged for a Bearer token. */
  basic?: string | undefined;
  /** distribution: its storage root, to fsync a pushed blob for the equal-durability figure. */
  distributionRoot?: string;
}

/** Runs every round against the targets (Berth first) and returns their results by name. */
export async function cliComparison(
  options: BenchOptions,
  work: string,
  targets: CliTarget[],
  progress: (message: string) => void,
): Promise<Partial<Record<Target['name'], CliResults>>> {
  const results: Partial<Record<Target['name'], CliResults>> = {};
  const auths = new Map<Target['name'], BenchAuth>();
  for (const { target, basic } of targets) {
    results[target.name] = { push: [], pull: [], manifest: [] };
    auths.set(target.name, new BenchAuth(target, basic, [BLOB_REPOSITORY, IMAGE_REPOSITORY]));
  }
  progress(`curl/wrk: writing a ${options.blobBytes / MiB} MiB file to push`);
  const file = new PushFile(join(work, 'cli-blob.bin'), options.blobBytes);
  writeRandomFile(file.path, file.size);
  const pushed = new Map<Target['name'], string>();

  const ceiling: number[] = [];
  for (let round = 0; round < options.runs; round++) {
    ceiling.push(await curlPushCeiling(file));
    progress(
      `curl push ceiling round ${round + 1}: ${ceiling.at(-1)!.toFixed(0)} MB/s into a discarding server`,
    );
    for (const { target, distributionRoot } of targets) {
      const digest = await file.renew();
      settleDisk();
      const durable = distributionRoot ? () => fsyncDistributionBlob(distributionRoot, digest) : undefined;
      const push = await curlPush(target, auths.get(target.name)!, BLOB_REPOSITORY, file, digest, durable);
      results[target.name]!.push.push(push);
      pushed.set(target.name, digest);
      progress(
        `curl push ${target.name} round ${round + 1}: ${push.mbPerSecond.toFixed(0)} MB/s` +
          (push.durableMbPerSecond ? ` (${push.durableMbPerSecond.toFixed(0)} MB/s with fsync)` : '') +
          `, ${cpu(push.serverCpuMsPerMiB)} ms CPU/MiB`,
      );
    }
  }
  results.berth!.pushCeiling = ceiling;
  settleDisk();
  for (let round = 0; round < options.runs; round++) {
    for (const { target } of targets) {
      const pull = await curlPull(
        target,
        auths.get(target.name)!,
        BLOB_REPOSITORY,
        pushed.get(target.name)!,
        file.size,
      );
      results[target.name]!.pull.push(pull);
      progress(
        `curl pull ${target.name} round ${round + 1}: ${pull.mbPerSecond.toFixed(0)} MB/s, ${cpu(pull.serverCpuMsPerMiB)} ms CPU/MiB`,
      );
    }
  }

  const manifestUrls = new Map<Target['name'], string>();
  for (const { target } of targets) {
    await pushSmallImage(target, IMAGE_REPOSITORY, 'v1');
    const url = `${target.url}/v2/${IMAGE_REPOSITORY}/manifests/v1`;
    manifestUrls.set(target.name, url);
    await wrk(target, url, await manifestHeaders(auths.get(target.name)!), options.connections, 1);
  }
  const seconds = options.quick ? 2 : 5;
  for (let round = 0; round < options.runs; round++) {
    for (const { target } of targets) {
      const headers = await manifestHeaders(auths.get(target.name)!);
      const result = await wrk(target, manifestUrls.get(target.name)!, headers, options.connections, seconds);
      // Timeouts on an overloaded machine are noted, not fatal; a wrong answer is.
      if (result.non2xx > 0) throw new Error(`${target.name} wrk: ${result.non2xx} non-2xx responses`);
      results[target.name]!.manifest.push(result);
      progress(
        `wrk manifest GET ${target.name} round ${round + 1}: ${result.requestsPerSecond.toFixed(0)} req/s, ` +
          `${cpu(result.serverCpuUsPerRequest)} µs CPU/req` +
          (result.socketErrors > 0 ? `, ${result.socketErrors} socket errors (timeouts)` : ''),
      );
    }
  }

  for (const { target } of targets) {
    const rss = await parallelPullRss(
      target,
      auths.get(target.name)!,
      pushed.get(target.name)!,
      file.size,
      options.parallelPulls,
      options.rssSampleMs,
    );
    results[target.name]!.parallelPullRss = rss;
    progress(
      `${options.parallelPulls} parallel pulls ${target.name}: RSS ${rss.baselineMiB.toFixed(0)} → ${rss.maxMiB.toFixed(0)} MiB ` +
        `(peak ${rss.peakMiB.toFixed(0)}), ${rss.seconds.toFixed(1)} s`,
    );
  }
  return results;
}

/** The headline rows: medians over the rounds, ratios against distribution, and the targets. */
export function cliRows(options: BenchOptions, results: Partial<Record<Target['name'], CliResults>>): Row[] {
  const { berth, distribution } = results;
  const durable = distribution?.push.map((p) => p.durableMbPerSecond ?? 0).filter((v) => v > 0);
  return [
    {
      metric: 'blob push, POST + PUT, curl (median)',
      unit: 'MB/s',
      berth: median(berth?.push.map((p) => p.mbPerSecond)),
      distribution: median(distribution?.push.map((p) => p.mbPerSecond)),
      goal: { kind: 'ratio-at-least', value: 3 },
      better: 'higher',
    },
    {
      metric: '  … distribution + fsync of the blob (equal durability)',
      unit: 'MB/s',
      berth: median(berth?.push.map((p) => p.mbPerSecond)),
      distribution: median(durable),
      goal: { kind: 'ratio-at-least', value: 3 },
      better: 'higher',
    },
    {
      metric: '  … ceiling: curl into a server that discards the body',
      unit: 'MB/s',
      berth: median(berth?.pushCeiling),
    },
    {
      metric: 'blob pull, GET to /dev/null, curl (median)',
      unit: 'MB/s',
      berth: median(berth?.pull.map((p) => p.mbPerSecond)),
      distribution: median(distribution?.pull.map((p) => p.mbPerSecond)),
      goal: { kind: 'ratio-at-least', value: 1 },
      better: 'higher',
    },
    {
      metric: `manifest GET by tag, wrk ${options.connections} conn (median)`,
      unit: 'req/s',
      berth: median(berth?.manifest.map((m) => m.requestsPerSecond)),
      distribution: median(distribution?.manifest.map((m) => m.requestsPerSecond)),
      goal: { kind: 'ratio-at-least', value: 10 },
      better: 'higher',
    },
    {
      metric: 'server CPU per MiB pushed (median)',
      unit: 'ms',
      berth: median(berth?.push.map((p) => p.serverCpuMsPerMiB)),
      distribution: median(distribution?.push.map((p) => p.serverCpuMsPerMiB)),
      better: 'lower',
    },
    {
      metric: 'server CPU per MiB pulled (median)',
      unit: 'ms',
      berth: median(berth?.pull.map((p) => p.serverCpuMsPerMiB)),
      distribution: median(distribution?.pull.map((p) => p.serverCpuMsPerMiB)),
      better: 'lower',
    },
    {
      metric: 'server CPU per manifest GET (median)',
      unit: 'µs',
      berth: median(berth?.manifest.map((m) => m.serverCpuUsPerRequest)),
      distribution: median(distribution?.manifest.map((m) => m.serverCpuUsPerRequest)),
      better: 'lower',
    },
    {
      metric: `RSS growth during ${options.parallelPulls} concurrent ${options.blobBytes / MiB} MiB pulls`,
      unit: 'MiB',
      berth: berth?.parallelPullRss?.growthMiB,
      distribution: distribution?.parallelPullRss?.growthMiB,
      goal: { kind: 'below', value: 64 },
    },
  ];
}

/** `count` simultaneous whole-blob GETs while VmRSS is sampled; VmHWM is reset first where allowed. */
async function parallelPullRss(
  target: Target,
  auth: BenchAuth,
  digest: string,
  size: number,
  count: number,
  sampleMs: number,
): Promise<NonNullable<CliResults['parallelPullRss']>> {
  await curlPull(target, auth, BLOB_REPOSITORY, digest, size);
  await sleep(500);
  try {
    // "5" resets the peak-RSS counter (proc(5)), so VmHWM afterwards is this phase's own peak.
    writeFileSync(`/proc/${target.pid}/clear_refs`, '5');
  } catch {
    // not permitted: the sampled maximum still stands
  }
  const baseline = readMemory(target.pid).rss;
  let max = baseline;
  const timer = setInterval(() => {
    try {
      max = Math.max(max, readMemory(target.pid).rss);
    } catch {
      // the process is gone; the pulls fail and say so
    }
  }, sampleMs);
  const started = performance.now();
  try {
    await curlParallelPulls(target, auth, BLOB_REPOSITORY, digest, size, count);
  } finally {
    clearInterval(timer);
  }
  const after = readMemory(target.pid);
  max = Math.max(max, after.rss);
  return {
    baselineMiB: baseline,
    maxMiB: max,
    growthMiB: max - baseline,
    peakMiB: after.hwm,
    seconds: (performance.now() - started) / 1000,
  };
}

async function manifestHeaders(auth: BenchAuth): Promise<string[]> {
  return [...(await auth.headerArgs()), '-H', `Accept: ${MANIFEST_ACCEPT}`];
}

/**
 * distribution returns 201 before its bytes are on disk: fsync the blob's data file and its directory
 * (coreutils `sync FILE…` fsyncs each), which is what Berth does before it answers.
 */
function fsyncDistributionBlob(root: string, digest: string): void {
  const hex = digest.slice('sha256:'.length);
  const dir = join(root, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex);
  execFileSync('sync', [join(dir, 'data'), dir], { timeout: 60_000 });
}

function writeRandomFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < size; written += MiB)
      writeSync(fd, randomBytes(Math.min(MiB, size - written)));
  } finally {
    closeSync(fd);
  }
}

function median(values: (number | undefined)[] | undefined): number | undefined {
  const present = (values ?? []).filter((v): v is number => v !== undefined);
  if (present.length === 0) return undefined;
  present.sort((a, b) => a - b);
  const middle = Math.floor(present.length / 2);
  return present.length % 2 === 1 ? present[middle] : (present[middle - 1]! + present[middle]!) / 2;
}

function cpu(value: number | undefined): string {
  return value === undefined ? '?' : value.toFixed(2);
}
