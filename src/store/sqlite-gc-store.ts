import type Database from 'better-sqlite3';
import { openSqlite } from './sqlite.js';
import type { BlobLinkRecord, GcRunRecord, GcStore, LinkCursor, RetentionPolicy } from './gc-types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS gc_runs (
  id TEXT PRIMARY KEY,
  registry TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gc_runs_by_registry ON gc_runs (registry, started_at);
CREATE TABLE IF NOT EXISTS retention_policies (
  registry TEXT PRIMARY KEY,
  days INTEGER NOT NULL,
  status TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS backup_leases (
  id TEXT PRIMARY KEY,
  until INTEGER NOT NULL
);
`;

/**
 * `m` is an untagged manifest older than `@before` that no other manifest of its repository refers to
 * (as an index child), and not a referrer whose subject is still there.
 */
const UNTAGGED = `m.created_at < @before
  AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.registry = m.registry AND t.repository = m.repository
                  AND t.digest = m.digest)
  AND NOT EXISTS (SELECT 1 FROM manifests p WHERE p.registry = m.registry AND p.repository = m.repository
                  AND p.digest <> m.digest AND instr(p.content, m.digest) > 0)
  AND (m.subject IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s WHERE s.registry = m.registry
                  AND s.repository = m.repository AND s.digest = m.subject))`;

/** Runs kept per registry; older ones are dropped as new ones are recorded. */
const RUNS_KEPT = 50;

/**
 * The collector's store on the embedded database: its own connection (WAL) to the file the metadata
 * store uses, so the registry tables it reads and writes are the same ones. The metadata store's
 * schema (tables `manifests`, `blob_links`, `blobs`, `tags`, `uploads`) is created before this opens.
 */
export class SqliteGcStore implements GcStore {
  private readonly db: Database.Database;
  private readonly stmt;

  constructor(path: string) {
    this.db = openSqlite(path, SCHEMA);
    const db = this.db;
    this.stmt = {
      manifestPage: db.prepare(
        `SELECT repository, digest, content FROM manifests WHERE registry = ? AND (repository, digest) > (?, ?)
         ORDER BY repository, digest LIMIT ?`,
      ),
      linkPage: db.prepare(
        `SELECT l.repository AS repository, l.digest AS digest, COALESCE(b.size, 0) AS size, l.linked_at AS linkedAt
         FROM blob_links l LEFT JOIN blobs b ON b.registry = l.registry AND b.digest = l.digest
         WHERE l.registry = ? AND (l.repository, l.digest) > (?, ?) ORDER BY l.repository, l.digest LIMIT ?`,
      ),
      unlinkedBlobs: db.prepare(
        `SELECT digest, size FROM blobs b WHERE registry = ?
         AND NOT EXISTS (SELECT 1 FROM blob_links l WHERE l.registry = b.registry AND l.digest = b.digest)
         ORDER BY digest LIMIT ?`,
      ),
      // The digest's text inside a manifest's bytes is a conservative test of "refers to": it can keep
      // a blob a manifest only mentions (in an annotation), never drop one it needs.
      dropLink: db.prepare(
        `DELETE FROM blob_links WHERE registry = @registry AND repository = @repository AND digest = @digest
         AND linked_at < @before
         AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.registry = @registry AND m.repository = @repository
                         AND instr(m.content, @digest) > 0)`,
      ),
      blobLinked: db.prepare('SELECT 1 FROM blob_links WHERE registry = ? AND digest = ? LIMIT 1'),
      blobSize: db.prepare('SELECT size FROM blobs WHERE registry = ? AND digest = ?'),
      deleteBlob: db.prepare('DELETE FROM blobs WHERE registry = ? AND digest = ?'),
      leaseActive: db.prepare('SELECT 1 FROM backup_leases WHERE until > ? LIMIT 1'),
      untagged: db.prepare(
        `SELECT m.repository AS repository, m.digest AS digest FROM manifests m
         WHERE m.registry = @registry AND ${UNTAGGED} ORDER BY m.created_at LIMIT @limit`,
      ),
      // The same conditions again inside the delete: a tag pushed onto the manifest (or an index
      // referring to it) since it was listed keeps it.
      deleteUntagged: db.prepare(
        `DELETE FROM manifests WHERE rowid IN (SELECT m.rowid FROM manifests m WHERE m.registry = @registry
         AND m.repository = @repository AND m.digest = @digest AND ${UNTAGGED})`,
      ),
      getPolicy: db.prepare('SELECT days, status, updated_at FROM retention_policies WHERE registry = ?'),
      putPolicy: db.prepare(
        `INSERT INTO retention_policies (registry, days, status, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (registry) DO UPDATE SET days = excluded.days, status = excluded.status, updated_at = excluded.updated_at`,
      ),
      insertRun: db.prepare(
        'INSERT INTO gc_runs (id, registry, started_at, finished_at, record) VALUES (?, ?, ?, ?, ?)',
      ),
      trimRuns: db.prepare(
        `DELETE FROM gc_runs WHERE registry = @registry AND id NOT IN
         (SELECT id FROM gc_runs WHERE registry = @registry ORDER BY started_at DESC LIMIT @kept)`,
      ),
      listRuns: db.prepare('SELECT record FROM gc_runs WHERE registry = ? ORDER BY started_at DESC LIMIT ?'),
      upsertLease: db.prepare(
        'INSERT INTO backup_leases (id, until) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET until = excluded.until',
      ),
      deleteLease: db.prepare('DELETE FROM backup_leases WHERE id = ?'),
      countUploads: db.prepare('SELECT COUNT(*) AS n FROM uploads'),
    };
  }

  async manifestPage(
    registry: string,
    after: LinkCursor | undefined,
    limit: number,
  ): Promise<{ repository: string; digest: string; content: Buffer }[]> {
    return this.stmt.manifestPage.all(registry, after?.repository ?? '', after?.digest ?? '', limit) as {
      repository: string;
      digest: string;
      content: Buffer;
    }[];
  }

  async linkPage(registry: string, after: LinkCursor | undefined, limit: number): Promise<BlobLinkRecord[]> {
    return this.stmt.linkPage.all(
      registry,
      after?.repository ?? '',
      after?.digest ?? '',
      limit,
    ) as BlobLinkRecord[];
  }

  async unlinkedBlobs(registry: string, limit: number): Promise<{ digest: string; size: number }[]> {
    return this.stmt.unlinkedBlobs.all(registry, limit) as { digest: string; size: number }[];
  }

  async dropLinks(registry: string, links: LinkCursor[], linkedBefore: number): Promise<LinkCursor[]> {
    // IMMEDIATE takes the write lock first, so the checks and deletes see the latest commit of every
    // connection and no manifest can be written in between.
    return this.db
      .transaction(() =>
        links.filter(
          (link) =>
            this.stmt.dropLink.run({
              registry,
              repository: link.repository,
              digest: link.digest,
              before: linkedBefore,
            }).changes > 0,
        ),
      )
      .immediate();
  }

  async dropBlobRecord(
    registry: string,
    digest: string,
    now: number,
  ): Promise<number | 'deferred' | undefined> {
    return this.db
      .transaction((): number | 'deferred' | undefined => {
        if (this.stmt.blobLinked.get(registry, digest) !== undefined) return undefined;
        const row = this.stmt.blobSize.get(registry, digest) as { size: number } | undefined;
        if (!row) return undefined;
        if (this.stmt.leaseActive.get(now) !== undefined) return 'deferred';
        this.stmt.deleteBlob.run(registry, digest);
        return row.size;
      })
      .immediate();
  }

  async untaggedManifests(
    registry: string,
    before: number,
    limit: number,
  ): Promise<{ repository: string; digest: string }[]> {
    return this.stmt.untagged.all({ registry, before, limit }) as { repository: string; digest: string }[];
  }

  async deleteUntaggedManifest(
    registry: string,
    repository: string,
    digest: string,
    before: number,
  ): Promise<boolean> {
    return this.db
      .transaction(() => this.stmt.deleteUntagged.run({ registry, repository, digest, before }).changes > 0)
      .immediate();
  }

  async getRetentionPolicy(registry: string): Promise<RetentionPolicy | undefined> {
    const row = this.stmt.getPolicy.get(registry) as
      { days: number; status: RetentionPolicy['status']; updated_at: number } | undefined;
    return row && { days: row.days, status: row.status, lastUpdatedTime: new Date(row.updated_at) };
  }

  async setRetentionPolicy(registry: string, policy: RetentionPolicy): Promise<void> {
    this.stmt.putPolicy.run(registry, policy.days, policy.status, policy.lastUpdatedTime.getTime());
  }

  async recordRun(run: GcRunRecord): Promise<void> {
    this.db.transaction(() => {
      this.stmt.insertRun.run(
        run.id,
        run.registry,
        run.startedAt.getTime(),
        run.finishedAt.getTime(),
        JSON.stringify(run),
      );
      this.stmt.trimRuns.run({ registry: run.registry, kept: RUNS_KEPT });
    })();
  }

  async listRuns(registry: string, limit: number): Promise<GcRunRecord[]> {
    return (this.stmt.listRuns.all(registry, limit) as { record: string }[]).map((row) => {
      const run = JSON.parse(row.record) as GcRunRecord & { startedAt: string; finishedAt: string };
      return { ...run, startedAt: new Date(run.startedAt), finishedAt: new Date(run.finishedAt) };
    });
  }

  async deleteRegistryRecords(registry: string): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM gc_runs WHERE registry = ?').run(registry);
      this.db.prepare('DELETE FROM retention_policies WHERE registry = ?').run(registry);
    })();
  }

  async takeBackupLease(id: string, until: number): Promise<void> {
    this.db.transaction(() => this.stmt.upsertLease.run(id, until)).immediate();
  }

  async releaseBackupLease(id: string): Promise<void> {
    this.stmt.deleteLease.run(id);
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async countUploads(): Promise<number> {
    return (this.stmt.countUploads.get() as { n: number }).n;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
