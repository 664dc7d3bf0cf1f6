import type { Logger } from 'pino';
import {
  DENIAL_SAMPLES,
  type DenialAuditStore,
  type DenialBucket,
  type DenialRecord,
} from '../store/types.js';

/** How much of the denial log is kept, and how often a refused address may write a server log line. */
export interface DenialLogOptions {
  /** Buckets older than this are dropped. */
  retentionDays: number;
  /** At most this many stored buckets (address × reason × minute); the oldest minutes go first. */
  maxEntries: number;
  /** One server log line per registry and client address per this many seconds. */
  logIntervalSeconds: number;
}

export const DEFAULT_DENIAL_LOG: DenialLogOptions = {
  retentionDays: 30,
  maxEntries: 200_000,
  logIntervalSeconds: 60,
};

/** Past this many buckets in memory the log is written at once, so a flood never drops a count. */
const MAX_PENDING_BUCKETS = 5_000;
const FLUSH_INTERVAL_MS = 1_000;
const PRUNE_INTERVAL_MS = 60_000;
/** Server log lines about denials, all addresses together, per second; the rest are counted. */
const MAX_LOG_LINES_PER_SECOND = 20;
/** Addresses whose log line timing is remembered; beyond it, expired entries are forgotten. */
const MAX_TRACKED_ADDRESSES = 10_000;
/** Sample paths are for a person reading the log; the first 256 characters say what was tried. */
const SAMPLE_PATH_CHARS = 256;

interface LineState {
  /** When this address may next write a line. */
  next: number;
  suppressed: number;
}

/**
 * The denial log: refused requests counted per registry, address, reason, entry, mode and minute in
 * memory, added to the store in batches (exact counts, however many arrive), pruned to a retention
 * period and a size bound; and server log lines about denials, rate-limited per address and overall.
 */
export class DenialLog {
  private pending = new Map<string, DenialBucket>();
  private readonly lines = new Map<string, LineState>();
  private window = { second: 0, lines: 0 };
  private suppressedLines = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly audit: DenialAuditStore,
    private readonly log: Logger,
    private readonly options: DenialLogOptions = DEFAULT_DENIAL_LOG,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.flushTimer = setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    this.flushTimer.unref();
    this.pruneTimer = setInterval(() => void this.prune(), PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
    void this.prune();
  }

  async stop(): Promise<void> {
    clearInterval(this.flushTimer);
    clearInterval(this.pruneTimer);
    await this.flush();
  }

  /** Counts a denial (and maybe writes a server log line about it). */
  record(record: DenialRecord): void {
    const time = record.time.getTime();
    const minute = time - (time % 60_000);
    const reportOnly = record.reportOnly === true;
    const key = `${record.registry}\0${minute}\0${record.clientIp}\0${record.reason}\0${record.entry}\0${reportOnly}`;
    let bucket = this.pending.get(key);
    if (!bucket) {
      bucket = {
        registry: record.registry,
        minute: new Date(minute),
        clientIp: record.clientIp,
        reason: record.reason,
        entry: record.entry,
        reportOnly,
        count: 0,
        firstSeen: record.time,
        lastSeen: record.time,
        samples: [],
      };
      this.pending.set(key, bucket);
    }
    bucket.count++;
    if (time > bucket.lastSeen.getTime()) bucket.lastSeen = record.time;
    if (time < bucket.firstSeen.getTime()) bucket.firstSeen = record.time;
    const path = record.path.slice(0, SAMPLE_PATH_CHARS);
    if (
      bucket.samples.length < DENIAL_SAMPLES &&
      !bucket.samples.some((s) => s.method === record.method && s.path === path)
    )
      bucket.samples.push({ method: record.method, path });
    if (this.pending.size >= MAX_PENDING_BUCKETS) void this.flush();
    this.logLine(record);
  }

  /** Writes the pending counts now (queries call it first, so they see every denial). */
  flush(): Promise<void> {
    // Flushes run one after another, so two never write the same bucket at once.
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  /** Applies the retention period and the size bound now. */
  async prune(): Promise<void> {
    await this.flush();
    const before = new Date(this.now() - this.options.retentionDays * 86_400_000);
    try {
      const { deleted } = await this.audit.pruneDenials(before, this.options.maxEntries);
      if (deleted > 0) this.log.info({ deleted }, 'denial log pruned');
    } catch (err) {
      this.log.error({ err }, 'denial log prune failed');
    }
  }

  private async write(): Promise<void> {
    if (this.suppressedLines > 0) {
      this.log.warn({ suppressed: this.suppressedLines }, 'denial log lines suppressed');
      this.suppressedLines = 0;
    }
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    try {
      await this.audit.addDenialCounts(batch);
    } catch (err) {
      // Counted again with the next batch, so a passing failure (a busy database) loses nothing.
      for (const bucket of batch) this.merge(bucket);
      this.log.error({ err, buckets: batch.length }, 'denial log write failed');
    }
  }

  private merge(bucket: DenialBucket): void {
    const key = `${bucket.registry}\0${bucket.minute.getTime()}\0${bucket.clientIp}\0${bucket.reason}\0${bucket.entry}\0${bucket.reportOnly}`;
    const current = this.pending.get(key);
    if (!current) return void this.pending.set(key, bucket);
    current.count += bucket.count;
    if (bucket.firstSeen < current.firstSeen) current.firstSeen = bucket.firstSeen;
    if (bucket.lastSeen > current.lastSeen) current.lastSeen = bucket.lastSeen;
  }

  /** One line per address per interval (with how many it stood for), and a ceiling for all together. */
  private logLine(record: DenialRecord): void {
    const now = this.now();
    const key = `${record.registry}\0${record.clientIp}`;
    const state = this.lines.get(key);
    if (state && now < state.next) {
      state.suppressed++;
      return;
    }
    const second = Math.floor(now / 1000);
    if (this.window.second !== second) this.window = { second, lines: 0 };
    if (this.window.lines >= MAX_LOG_LINES_PER_SECOND) {
      this.suppressedLines++;
      return;
    }
    this.window.lines++;
    if (this.lines.size >= MAX_TRACKED_ADDRESSES) this.forgetExpired(now);
    this.lines.set(key, { next: now + this.options.logIntervalSeconds * 1000, suppressed: 0 });
    this.log.info(
      {
        registry: record.registry,
        clientIp: record.clientIp,
        reason: record.reason,
        path: record.path.slice(0, SAMPLE_PATH_CHARS),
        ...(record.reportOnly ? { reportOnly: true } : {}),
        ...(state && state.suppressed > 0 ? { alsoDeniedSinceLastLine: state.suppressed } : {}),
      },
      record.reportOnly ? 'network access would be denied' : 'network access denied',
    );
  }

  private forgetExpired(now: number): void {
    for (const [key, state] of this.lines) if (state.next <= now) this.lines.delete(key);
    if (this.lines.size >= MAX_TRACKED_ADDRESSES) this.lines.clear();
  }
}
