import { sql } from 'kysely';
import type { BlobLinkRecord, GcRunRecord, GcStore, LinkCursor, RetentionPolicy } from '../gc-types.js';
import { openSqlDatabase, type SqlDatabase, type SqlDialect } from './database.js';
import { contains, GC_MIGRATIONS, untagged, type GcDb, type GcTables } from './gc-schema.js';
import { migrate } from './migrations.js';
import { writeTransaction } from './transaction.js';

/** Runs kept per registry; older ones are dropped as new ones are recorded. */
const RUNS_KEPT = 50;

/**
 * An advisory lock key for "blob deletion vs. backup lease" on PostgreSQL: a backup taking its lease
 * waits for every blob deletion in flight, and a deletion after it sees the lease.
 */
const LEASE_LOCK = 0x6265_7274; // "bert"

/**
 * The collector's store, one implementation for SQLite and PostgreSQL: the same queries over the
 * metadata tables, with row locks on PostgreSQL where SQLite's IMMEDIATE transactions already exclude
 * every other writer. Each write first locks the rows it is about to delete (links, a blob record, a
 * manifest) FOR UPDATE, which waits for a manifest put or link holding them; its next statement then
 * reads a fresh snapshot, so it sees what that writer committed (see src/registry/gc.ts).
 */
export class SqlGcStore implements GcStore {
  private readonly db: GcDb;
  private readonly dialect: SqlDialect;

  /** A store on a shared database handle (the caller migrates and closes it). */
  constructor(
    private readonly database: SqlDatabase,
    private readonly owned = false,
  ) {
    this.db = database.db as unknown as GcDb;
    this.dialect = database.dialect;
  }

  /** Opens a SQLite file (the embedded default) with a connection of its own and creates the tables. */
  static async openSqlite(path: string): Promise<SqlGcStore> {
    const database = await openSqlDatabase({ sqlitePath: path });
    try {
      await migrate(database, [GC_MIGRATIONS]);
    } catch (error) {
      await database.close();
      throw error;
    }
    return new SqlGcStore(database, true);
  }

  async manifestPage(
    registry: string,
    after: LinkCursor | undefined,
    limit: number,
  ): Promise<{ repository: string; digest: string; content: Buffer }[]> {
    return this.db
      .selectFrom('manifests')
      .select(['repository', 'digest', 'content'])
      .where('registry', '=', registry)
      .where((eb) =>
        eb(eb.refTuple('repository', 'digest'), '>', eb.tuple(after?.repository ?? '', after?.digest ?? '')),
      )
      .orderBy('repository')
      .orderBy('digest')
      .limit(limit)
      .execute();
  }

  async linkPage(registry: string, after: LinkCursor | undefined, limit: number): Promise<BlobLinkRecord[]> {
    return this.db
      .selectFrom('blob_links as l')
      .leftJoin('blobs as b', (join) =>
        join.onRef('b.registry', '=', 'l.registry').onRef('b.digest', '=', 'l.digest'),
      )
      .select((eb) => [
        'l.repository',
        'l.digest',
        eb.fn.coalesce('b.size', sql<number>`0`).as('size'),
        'l.linked_at as linkedAt',
      ])
      .where('l.registry', '=', registry)
      .where((eb) =>
        eb(
          eb.refTuple('l.repository', 'l.digest'),
          '>',
          eb.tuple(after?.repository ?? '', after?.digest ?? ''),
        ),
      )
      .orderBy('l.repository')
      .orderBy('l.digest')
      .limit(limit)
      .execute();
  }

  async unlinkedBlobs(registry: string, limit: number): Promise<{ digest: string; size: number }[]> {
    return this.db
      .selectFrom('blobs as b')
      .select(['b.digest', 'b.size'])
      .where('b.registry', '=', registry)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('blob_links as l')
              .select('l.digest')
              .whereRef('l.registry', '=', 'b.registry')
              .whereRef('l.digest', '=', 'b.digest'),
          ),
        ),
      )
      .orderBy('b.digest')
      .limit(limit)
      .execute();
  }

  async dropLinks(registry: string, links: LinkCursor[], linkedBefore: number): Promise<LinkCursor[]> {
    const ordered = [...links].sort(
      (x, y) => compare(x.repository, y.repository) || compare(x.digest, y.digest),
    );
    return this.transaction(async (trx) => {
      const dropped: LinkCursor[] = [];
      for (const link of ordered) {
        if (this.dialect === 'postgres')
          await trx
            .selectFrom('blob_links')
            .select('digest')
            .where('registry', '=', registry)
            .where('repository', '=', link.repository)
            .where('digest', '=', link.digest)
            .forUpdate()
            .execute();
        const result = await trx
          .deleteFrom('blob_links')
          .where('registry', '=', registry)
          .where('repository', '=', link.repository)
          .where('digest', '=', link.digest)
          .where('linked_at', '<', linkedBefore)
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom('manifests as m')
                  .select('m.digest')
                  .where('m.registry', '=', registry)
                  .where('m.repository', '=', link.repository)
                  .where(contains(this.dialect, sql.ref('m.content'), sql.val(link.digest))),
              ),
            ),
          )
          .executeTakeFirst();
        if (Number(result.numDeletedRows) > 0) dropped.push(link);
      }
      return dropped;
    });
  }

  async dropBlobRecord(
    registry: string,
    digest: string,
    now: number,
  ): Promise<number | 'deferred' | undefined> {
    return this.transaction(async (trx): Promise<number | 'deferred' | undefined> => {
      let record = trx
        .selectFrom('blobs')
        .select('size')
        .where('registry', '=', registry)
        .where('digest', '=', digest);
      if (this.dialect === 'postgres') {
        await sql`SELECT pg_advisory_xact_lock_shared(${LEASE_LOCK})`.execute(trx);
        record = record.forUpdate();
      }
      const row = await record.executeTakeFirst();
      if (!row) return undefined;
      const linked = await trx
        .selectFrom('blob_links')
        .select('digest')
        .where('registry', '=', registry)
        .where('digest', '=', digest)
        .limit(1)
        .executeTakeFirst();
      if (linked) return undefined;
      const lease = await trx
        .selectFrom('backup_leases')
        .select('id')
        .where('until', '>', now)
        .limit(1)
        .executeTakeFirst();
      if (lease) return 'deferred';
      await trx.deleteFrom('blobs').where('registry', '=', registry).where('digest', '=', digest).execute();
      return row.size;
    });
  }

  async untaggedManifests(
    registry: string,
    before: number,
    limit: number,
  ): Promise<{ repository: string; digest: string }[]> {
    return this.db
      .selectFrom('manifests as m')
      .select(['m.repository', 'm.digest'])
      .where('m.registry', '=', registry)
      .where(untagged(this.dialect, before))
      .orderBy('m.created_at')
      .limit(limit)
      .execute();
  }

  async deleteUntaggedManifest(
    registry: string,
    repository: string,
    digest: string,
    before: number,
  ): Promise<boolean> {
    // The same conditions again inside the delete: a tag pushed onto the manifest (or an index
    // referring to it) since it was listed keeps it.
    return this.transaction(async (trx) => {
      if (this.dialect === 'postgres')
        await trx
          .selectFrom('manifests')
          .select('digest')
          .where('registry', '=', registry)
          .where('repository', '=', repository)
          .where('digest', '=', digest)
          .forUpdate()
          .execute();
      const result = await trx
        .deleteFrom('manifests as m')
        .where('m.registry', '=', registry)
        .where('m.repository', '=', repository)
        .where('m.digest', '=', digest)
        .where(untagged(this.dialect, before))
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  async getRetentionPolicy(registry: string): Promise<RetentionPolicy | undefined> {
    const row = await this.db
      .selectFrom('retention_policies')
      .select(['days', 'status', 'updated_at'])
      .where('registry', '=', registry)
      .executeTakeFirst();
    return (
      row && {
        days: row.days,
        status: row.status as RetentionPolicy['status'],
        lastUpdatedTime: new Date(row.updated_at),
      }
    );
  }

  async setRetentionPolicy(registry: string, policy: RetentionPolicy): Promise<void> {
    await this.db
      .insertInto('retention_policies')
      .values({
        registry,
        days: policy.days,
        status: policy.status,
        updated_at: policy.lastUpdatedTime.getTime(),
      })
      .onConflict((conflict) =>
        conflict.column('registry').doUpdateSet((eb) => ({
          days: eb.ref('excluded.days'),
          status: eb.ref('excluded.status'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute();
  }

  async recordRun(run: GcRunRecord): Promise<void> {
    await this.transaction(async (trx) => {
      await trx
        .insertInto('gc_runs')
        .values({
          id: run.id,
          registry: run.registry,
          started_at: run.startedAt.getTime(),
          finished_at: run.finishedAt.getTime(),
          record: JSON.stringify(run),
        })
        .execute();
      await trx
        .deleteFrom('gc_runs')
        .where('registry', '=', run.registry)
        .where(
          'id',
          'not in',
          trx
            .selectFrom('gc_runs')
            .select('id')
            .where('registry', '=', run.registry)
            .orderBy('started_at', 'desc')
            .limit(RUNS_KEPT),
        )
        .execute();
    });
  }

  async listRuns(registry: string, limit: number): Promise<GcRunRecord[]> {
    const rows = await this.db
      .selectFrom('gc_runs')
      .select('record')
      .where('registry', '=', registry)
      .orderBy('started_at', 'desc')
      .limit(limit)
      .execute();
    return rows.map((row) => {
      const run = JSON.parse(row.record) as GcRunRecord & { startedAt: string; finishedAt: string };
      return { ...run, startedAt: new Date(run.startedAt), finishedAt: new Date(run.finishedAt) };
    });
  }

  async deleteRegistryRecords(registry: string): Promise<void> {
    await this.transaction(async (trx) => {
      await trx.deleteFrom('gc_runs').where('registry', '=', registry).execute();
      await trx.deleteFrom('retention_policies').where('registry', '=', registry).execute();
    });
  }

  async takeBackupLease(id: string, until: number): Promise<void> {
    await this.transaction(async (trx) => {
      if (this.dialect === 'postgres') await sql`SELECT pg_advisory_xact_lock(${LEASE_LOCK})`.execute(trx);
      await trx
        .insertInto('backup_leases')
        .values({ id, until })
        .onConflict((conflict) =>
          conflict.column('id').doUpdateSet((eb) => ({ until: eb.ref('excluded.until') })),
        )
        .execute();
    });
  }

  async releaseBackupLease(id: string): Promise<void> {
    await this.db.deleteFrom('backup_leases').where('id', '=', id).execute();
  }

  async ping(): Promise<void> {
    await sql`SELECT 1`.execute(this.db);
  }

  async countUploads(): Promise<number> {
    const row = await this.db
      .selectFrom('uploads')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async close(): Promise<void> {
    if (this.owned) await this.database.close();
  }

  private transaction<T>(work: (trx: GcDb) => Promise<T>): Promise<T> {
    return writeTransaction<GcTables, T>(this.database, work);
  }
}

/** Byte order of ASCII keys, as the "C" collation and SQLite compare them. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
