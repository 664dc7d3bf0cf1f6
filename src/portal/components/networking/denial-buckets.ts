import type { Denials } from '../../types.js';

/** How many bars the chart draws over its time range. */
export const BARS = 30;

/** Counts per reason in `BARS` equal time buckets from `since` to `until`. */
export interface DenialBuckets {
  start: number;
  width: number;
  reasons: string[];
  /** `counts[bar][reasonIndex]` */
  counts: number[][];
}

/**
 * Buckets refusals over time by reason: from the per-minute `timeSeries` when the server sends it,
 * else from the individual denials in `value` (which the server caps, so that is a lower bound).
 */
export function bucketDenials(denials: Denials, since: Date, until: Date): DenialBuckets {
  const start = since.getTime();
  const width = Math.max(1, (until.getTime() - start) / BARS);
  const points: { time: number; reason: string; count: number }[] = denials.timeSeries
    ? denials.timeSeries.flatMap((p) =>
        Object.entries(p.counts).map(([reason, count]) => ({ time: Date.parse(p.time), reason, count })),
      )
    : denials.value.map((d) => ({ time: Date.parse(d.time), reason: d.reason, count: 1 }));
  const reasons = [...new Set(points.map((p) => p.reason))].sort();
  const counts = Array.from({ length: BARS }, () => reasons.map(() => 0));
  for (const p of points) {
    const bar = Math.floor((p.time - start) / width);
    if (bar < 0 || Number.isNaN(bar)) continue;
    counts[Math.min(bar, BARS - 1)]![reasons.indexOf(p.reason)]! += p.count;
  }
  return { start, width, reasons, counts };
}
