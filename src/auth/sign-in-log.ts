import type { Logger } from 'pino';
import type { AuthStore, SignInRecord, SignInResult } from '../store/types.js';

/** One sign-in attempt as reported by a listener. */
export interface SignInEvent {
  registry: string;
  identity: string;
  clientIp: string;
  listener: 'data' | 'management';
  result: SignInResult;
}

const FLUSH_INTERVAL_MS = 1_000;
/** Distinct (minute, registry, identity, address, outcome) keys kept between flushes. */
const MAX_PENDING_KEYS = 10_000;
const RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
const MAX_ROWS = 200_000;
const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * The sign-in log: every attempt is counted, aggregated per minute and key before it reaches the
 * store, so a flood of attempts grows counters, not rows. Rows older than a week go, and the table
 * never holds more than a fixed number of rows.
 */
export class SignInLog {
  private pending = new Map<string, SignInRecord>();
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastPrune = 0;

  constructor(
    private readonly store: AuthStore,
    private readonly log: Logger,
    /** Told of every attempt as it happens (metrics). */
    private readonly onAttempt: (event: SignInEvent) => void = () => undefined,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** Counts one attempt. */
  record(event: SignInEvent): void {
    this.onAttempt(event);
    const now = new Date();
    const minute = new Date(Math.floor(now.getTime() / 60_000) * 60_000);
    const identity = event.identity.slice(0, 200);
    const key = [
      minute.getTime(),
      event.registry,
      identity,
      event.clientIp,
      event.listener,
      event.result,
    ].join('\0');
    const existing = this.pending.get(key);
    if (existing) {
      existing.count++;
      existing.lastSeen = now;
      return;
    }
    if (this.pending.size >= MAX_PENDING_KEYS) {
      this.dropped++;
      return;
    }
    this.pending.set(key, { ...event, identity, minute, count: 1, lastSeen: now });
  }

  /** Writes pending counts now (queries call this first, so they see every attempt). */
  async flush(): Promise<void> {
    if (this.pending.size > 0) {
      const batch = [...this.pending.values()];
      this.pending = new Map();
      try {
        await this.store.appendSignIns(batch);
      } catch (err) {
        this.log.error({ err, count: batch.length }, 'sign-in log write failed');
      }
    }
    if (this.dropped > 0) {
      this.log.warn({ dropped: this.dropped }, 'sign-in log overflow: attempts not recorded');
      this.dropped = 0;
    }
    if (Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = Date.now();
      await this.store
        .pruneSignIns(new Date(Date.now() - RETENTION_MS), MAX_ROWS)
        .catch((err: unknown) => this.log.error({ err }, 'sign-in log prune failed'));
    }
  }

  /** Recorded sign-ins, newest first. */
  async query(filter: {
    registry?: string;
    since?: Date;
    result?: SignInResult;
    limit: number;
  }): Promise<SignInRecord[]> {
    await this.flush();
    return this.store.querySignIns(filter);
  }
}
