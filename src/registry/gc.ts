import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { GcRunRecord, GcStore, LinkCursor } from '../store/gc-types.js';
import type { BlobStore, MetadataStore } from '../store/types.js';
import type { BlobLocks } from './blob-locks.js';

/**
 * Online garbage collection of a registry's committed blobs.
 *
 * The protocol, and why a racing push never loses a blob:
 *
 * 1. Mark (no locks). Read every manifest of the registry, page by page, and note which digests each
 *    repository's manifests mention. Read every blob link. A link is a candidate when it is older than
 *    the grace period (`linked_at`, refreshed by every push or mount of the blob into the repository)
 *    and no manifest of its repository mentions its digest. The mark may be stale by the time it ends.
 * 2. Drop links, in IMMEDIATE write transactions of 100: each candidate is deleted only if, inside the
 *    transaction, it is *still* older than the grace period and *still* mentioned by no manifest of its
 *    repository. A manifest PUT checks its blobs' links inside its own write transaction
 *    (`MetadataStore.putManifest(…, blobs)`). SQLite runs the two transactions one after the other, so
 *    either the manifest committed first (and the re-check keeps the link) or the link was dropped first
 *    (and the PUT fails with MANIFEST_BLOB_UNKNOWN). A manifest can never commit over a dropped link.
 * 3. Delete blobs. For each digest that no repository links any more (and that no manifest of the
 *    registry mentions), under the digest's in-process lock: a write transaction deletes the blob's
 *    record only if still no link exists and no backup lease is held, then the file is unlinked. An
 *    upload's commit and a mount join file and record under the same lock, so one cannot find the
 *    file, skip writing it, and link it just as the collector removes it.
 *
 * A blob pushed but not yet referenced is protected by the grace period for that long (its link is
 * young); a blob uploaded in pieces is no blob until its upload commits, and uploads are never touched
 * here (expiry and crash leftovers are the upload purge's and reconciliation's job). On PostgreSQL
 * (several nodes) the store's transactions lock the rows they re-check instead (src/store/sql/gc-store.ts:
 * FOR UPDATE on the links, blob record or manifest to delete, which waits for a manifest PUT holding
 * FOR KEY SHARE on its links); across nodes `BlobLocks` is a shared advisory lock per digest
 * (`PgAdvisoryBlobLocks`).
 */
export interface GcOptions {
  /** A blob link younger than this is never dropped, referenced or not. */
  graceMs: number;
}

/** One run's outcome, plus (for a dry run) what would go. */
export interface GcReport extends GcRunRecord {
  /** Blobs deleted (or, dry, that would be), at most 1000 listed. */
  blobs: { digest: string; size: number }[];
}

/** Called after every run, for metrics and events. */
export type GcObserver = (report: GcReport) => void;

const PAGE = 500;
const BATCH = 100;
const LISTED = 1000;
/** Bounds on the work of one run, so a huge registry cannot keep the loop busy forever. */
const MAX_PAGES = 100_000;
const RETENTION_PASSES = 10;
const DIGEST_RE = /\b(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\b/g;

/** Runs garbage collection (after the retention policy) on one registry at a time per registry. */
export class GarbageCollector {
  private readonly running = new Map<string, Promise<GcReport>>();
  private readonly observers: GcObserver[] = [];
  private readonly deletions: ((registry: string, repository: string, digest: string) => void)[] = [];

  constructor(
    private readonly meta: MetadataStore,
    private readonly store: GcStore,
    private readonly blobs: BlobStore,
    private readonly locks: BlobLocks,
    private readonly options: GcOptions,
    private readonly log: Logger,
  ) {}

  /** Subscribes to finished runs. */
  onRun(observer: GcObserver): void {
    this.observers.push(observer);
  }

  /**
   * Subscribes to manifests retention deleted (they go through the collector's store, not the metadata
   * store, so the metadata store's change events do not announce them).
   */
  onManifestDeleted(listener: (registry: string, repository: string, digest: string) => void): void {
    this.deletions.push(listener);
  }

  /** Whether a run of the registry is in progress. */
  isRunning(registry: string): boolean {
    return this.running.has(registry);
  }

  /** Runs (or, dry, plans) a collection of the registry; a second call while one runs joins it. */
  async run(
    registry: string,
    options: { dryRun?: boolean; trigger?: GcRunRecord['trigger'] } = {},
  ): Promise<GcReport> {
    const current = this.running.get(registry);
    if (current) return current;
    const run = this.collect(registry, options.dryRun ?? false, options.trigger ?? 'manual');
    this.running.set(registry, run);
    try {
      return await run;
    } finally {
      this.running.delete(registry);
    }
  }

  private async collect(
    registry: string,
    dryRun: boolean,
    trigger: GcRunRecord['trigger'],
  ): Promise<GcReport> {
    const report: GcReport = {
      id: randomUUID(),
      registry,
      startedAt: new Date(),
      finishedAt: new Date(),
      dryRun,
      status: 'Succeeded',
      trigger,
      manifestsDeleted: 0,
      linksDropped: 0,
      blobsDeleted: 0,
      bytesReclaimed: 0,
      blobsDeferred: 0,
      blobs: [],
    };
    try {
      report.manifestsDeleted = await this.applyRetention(registry, dryRun);
      await this.sweep(registry, dryRun, report);
    } catch (error) {
      report.status = 'Failed';
      report.error = (error as Error).message;
      this.log.error({ err: error, registry }, 'garbage collection failed');
    }
    report.finishedAt = new Date();
    if (!dryRun) await this.store.recordRun(withoutList(report));
    this.log.info(
      {
        registry,
        dryRun,
        manifestsDeleted: report.manifestsDeleted,
        linksDropped: report.linksDropped,
        blobsDeleted: report.blobsDeleted,
        bytesReclaimed: report.bytesReclaimed,
      },
      'garbage collection finished',
    );
    for (const observer of this.observers) observer(report);
    return report;
  }

  /** Deletes untagged manifests older than the policy's days (children of an index first become orphans). */
  private async applyRetention(registry: string, dryRun: boolean): Promise<number> {
    const policy = await this.store.getRetentionPolicy(registry);
    if (!policy || policy.status !== 'enabled') return 0;
    const before = Date.now() - policy.days * 86_400_000;
    let deleted = 0;
    // Deleting an untagged index leaves its children untagged and unreferenced: another pass takes them.
    for (let pass = 0; pass < RETENTION_PASSES; pass++) {
      const doomed = await this.store.untaggedManifests(registry, before, 1000);
      if (dryRun) return doomed.length;
      for (const manifest of doomed) {
        if (await this.store.deleteUntaggedManifest(registry, manifest.repository, manifest.digest, before)) {
          deleted++;
          for (const listener of this.deletions) listener(registry, manifest.repository, manifest.digest);
        }
      }
      if (doomed.length === 0) break;
    }
    return deleted;
  }

  private async sweep(registry: string, dryRun: boolean, report: GcReport): Promise<void> {
    const { mentioned, everywhere } = await this.mark(registry);
    const linkedBefore = Date.now() - this.options.graceMs;
    const candidates: LinkCursor[] = [];
    const linkCount = new Map<string, number>();
    const sizes = new Map<string, number>();
    let after: LinkCursor | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const links = await this.store.linkPage(registry, after, PAGE);
      for (const link of links) {
        sizes.set(link.digest, link.size);
        linkCount.set(link.digest, (linkCount.get(link.digest) ?? 0) + 1);
        if (link.linkedAt < linkedBefore && !mentioned.has(key(link.repository, link.digest)))
          candidates.push({ repository: link.repository, digest: link.digest });
      }
      if (links.length < PAGE) break;
      after = links.at(-1);
    }

    const orphans = new Set<string>();
    if (dryRun) {
      report.linksDropped = candidates.length;
      for (const link of candidates) linkCount.set(link.digest, linkCount.get(link.digest)! - 1);
      for (const [digest, count] of linkCount) if (count === 0) orphans.add(digest);
    } else {
      for (let i = 0; i < candidates.length; i += BATCH) {
        const dropped = await this.store.dropLinks(registry, candidates.slice(i, i + BATCH), linkedBefore);
        report.linksDropped += dropped.length;
        for (const link of dropped) orphans.add(link.digest);
      }
    }
    for (const blob of await this.store.unlinkedBlobs(registry, 100_000)) {
      orphans.add(blob.digest);
      sizes.set(blob.digest, blob.size);
    }

    for (const digest of orphans) {
      // A manifest still mentions it (its link was deleted by hand): keep the bytes it needs.
      if (everywhere.has(digest)) continue;
      if (dryRun) {
        this.count(report, digest, sizes.get(digest) ?? 0);
        continue;
      }
      await this.locks.withLock(registry, digest, async () => {
        const size = await this.store.dropBlobRecord(registry, digest, Date.now());
        if (size === 'deferred') report.blobsDeferred++;
        if (typeof size !== 'number') return;
        await this.blobs.delete(registry, digest);
        this.count(report, digest, size);
      });
    }
  }

  /** Which (repository, digest) pairs manifests mention, and which digests any manifest mentions. */
  private async mark(registry: string): Promise<{ mentioned: Set<string>; everywhere: Set<string> }> {
    const mentioned = new Set<string>();
    const everywhere = new Set<string>();
    let after: LinkCursor | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const manifests = await this.store.manifestPage(registry, after, PAGE);
      for (const manifest of manifests) {
        // The same conservative test the drop transaction applies: the digest's text in the bytes.
        for (const match of manifest.content.toString('utf8').matchAll(DIGEST_RE)) {
          mentioned.add(key(manifest.repository, match[0]));
          everywhere.add(match[0]);
        }
      }
      if (manifests.length < PAGE) break;
      const last = manifests.at(-1)!;
      after = { repository: last.repository, digest: last.digest };
      // Yield between pages so a big registry does not hold the event loop for the whole mark.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { mentioned, everywhere };
  }

  private count(report: GcReport, digest: string, size: number): void {
    report.blobsDeleted++;
    report.bytesReclaimed += size;
    if (report.blobs.length < LISTED) report.blobs.push({ digest, size });
  }
}

function key(repository: string, digest: string): string {
  return `${repository}\u0000${digest}`;
}

function withoutList(report: GcReport): GcRunRecord {
  const { blobs: _blobs, ...run } = report;
  return run;
}

/** Runs every registry's collection on a timer, one registry after another. */
export class GcScheduler {
  private timer: NodeJS.Timeout | undefined;
  private tick: Promise<void> = Promise.resolve();

  constructor(
    private readonly gc: GarbageCollector,
    private readonly meta: MetadataStore,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** Starts the timer (an interval of 0 turns scheduled runs off). */
  start(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.tick = this.tick.then(() => this.runAll()).catch(() => undefined);
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a scheduled pass in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.tick;
  }

  private async runAll(): Promise<void> {
    for (const registry of await this.meta.listRegistries()) {
      try {
        await this.gc.run(registry.name, { trigger: 'schedule' });
      } catch (err) {
        this.log.error({ err, registry: registry.name }, 'scheduled garbage collection failed');
      }
    }
  }
}
