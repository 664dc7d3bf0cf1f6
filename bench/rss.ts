import { setTimeout as sleep } from 'node:timers/promises';
import { pushPostPut, type Transfer } from './blob.js';
import { readMemory } from './proc.js';
import type { Payload } from './payload.js';
import type { Target } from './targets.js';

/** Memory of a process across one push, from `/proc/<pid>/status`. */
export interface RssResult {
  baselineMiB: number;
  maxMiB: number;
  /** max − baseline: what the push cost in resident memory. */
  growthMiB: number;
  /** VmHWM after the push: the kernel's peak, which also catches spikes between samples. */
  peakMiB: number;
  samples: number;
  push: Transfer;
}

/**
 * Pushes `payload` (POST + PUT, body streamed from a generator) while sampling the server's VmRSS every
 * `sampleMs`. `warmup` is pushed first so one-time allocations (JIT, first upload path) are not counted.
 */
export async function rssDuringPush(
  target: Target,
  repository: string,
  payload: Payload,
  warmup: Payload,
  sampleMs: number,
): Promise<RssResult> {
  await pushPostPut(target, repository, warmup);
  await sleep(500);
  const baseline = readMemory(target.pid).rss;
  let max = baseline;
  let samples = 0;
  const timer = setInterval(() => {
    try {
      max = Math.max(max, readMemory(target.pid).rss);
      samples++;
    } catch {
      // the process is gone; the push fails and says so
    }
  }, sampleMs);
  let push: Transfer;
  try {
    push = await pushPostPut(target, repository, payload);
  } finally {
    clearInterval(timer);
  }
  const after = readMemory(target.pid);
  max = Math.max(max, after.rss);
  return { baselineMiB: baseline, maxMiB: max, growthMiB: max - baseline, peakMiB: after.hwm, samples, push };
}
