import { sql, type Kysely } from 'kysely';
import {
  DENIAL_SAMPLES,
  type DenialAuditStore,
  type DenialBucket,
  type DenialQueryResult,
} from '../types.js';
import type { SqlDatabase } from './database.js';
import { greatest, least, touched } from './statements.js';
import { writeTransaction } from './transaction.js';

/** The denial log's table, as the embedded store has always had it. */
export const DENIAL_DDL = `
CREATE TABLE IF NOT EXISTS network_denial_counts (
  registry TEXT NOT NULL,
  minute INTEGER NOT NULL,
  client_ip TEXT NOT NULL,
  reason TEXT NOT NULL,
  entry TEXT NOT NULL,
  report_only INTEGER NOT NULL,
  count INTEGER NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  samples TEXT NOT NULL,
  PRIMARY KEY (registry, minute, client_ip, reason, entry, report_only)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS network_denial_counts_by_last_seen ON network_denial_counts (registry, last_seen);
CREATE INDEX IF NOT EXISTS network_denial_counts_by_minute ON network_denial_counts (minute);
`;

/**
 * Logs from before aggregation (one row per request, SQLite only) become buckets once, on first start.
 * Runs only when the old table exists.
 */
export const MIGRATE_PER_REQUEST_LOG = [
  `INSERT INTO network_denial_counts
     (registry, minute, client_ip, reason, entry, report_only, count, first_seen, last_seen, samples)
   SELECT registry, (time / 60000) * 60000, client_ip, reason, entry, 0, COUNT(*), MIN(time), MAX(time), '[]'
   FROM network_denials GROUP BY registry, (time / 60000) * 60000, client_ip, reason, entry
   ON CONFLICT DO NOTHING`,
  'DROP TABLE network_denials',
];

interface BucketRow {
  registry: string;
  minute: number;
  client_ip: string;
  reason: string;
  entry: string;
  report_only: number;
  count: number;
  first_seen: number;
  last_seen: number;
  samples: string;
}

interface DenialTables {
  network_denial_counts: BucketRow;
}

const KEY = ['registry', 'minute', 'client_ip', 'reason', 'entry', 'report_only'] as const;

type Sample = { method: string; path: string };

/** The denial log over the shared SQL layer (SQLite and PostgreSQL, one set of queries). */
export class SqlDenialLogStore implements DenialAuditStore {
  private readonly db: Kysely<DenialTables>;

  constructor(private readonly database: SqlDatabase) {
    this.db = database.db as Kysely<DenialTables>;
  }

  async addDenialCounts(buckets: DenialBucket[]): Promise<void> {
    // Sorted by key, so two nodes flushing overlapping batches lock rows in one order (no deadlock).
    const rows = buckets.map(bucketRow).sort((a, b) => compareKeys(a, b));
    if (rows.length === 0) return;
    const dialect = this.database.dialect;
    await writeTransaction<DenialTables, void>(this.database, async (trx) => {
      for (const row of rows) {
        const fresh = parseSamples(row.samples);
        // Counts add in the database. The upsert also locks the row until commit (PostgreSQL; SQLite's
        // IMMEDIATE transaction excludes every writer), so merging the samples it returns cannot lose
        // another node's samples.
        const stored = await trx
          .insertInto('network_denial_counts')
          .values({ ...row, samples: JSON.stringify(mergeSamples([], fresh)) })
          .onConflict((oc) =>
            oc.columns(KEY).doUpdateSet((eb) => ({
              count: eb('network_denial_counts.count', '+', eb.ref('excluded.count')),
              first_seen: least(dialect, 'network_denial_counts.first_seen', 'excluded.first_seen'),
              last_seen: greatest(dialect, 'network_denial_counts.last_seen', 'excluded.last_seen'),
            })),
          )
          .returning('samples')
          .executeTakeFirstOrThrow();
        const before = parseSamples(stored.samples);
        const merged = mergeSamples(before, fresh);
        if (merged.length === before.length) continue;
        let update = trx.updateTable('network_denial_counts').set({ samples: JSON.stringify(merged) });
        for (const column of KEY) update = update.where(column, '=', row[column]);
        await update.execute();
      }
    });
  }

  async queryDenials(
    registry: string,
    filter: { since?: Date; clientIp?: string; limit: number; seriesSince: Date },
  ): Promise<DenialQueryResult> {
    const where = (since: number) => {
      let query = this.db
        .selectFrom('network_denial_counts')
        .where('registry', '=', registry)
        .where('last_seen', '>=', since);
      if (filter.clientIp !== undefined) query = query.where('client_ip', '=', filter.clientIp);
      return query;
    };
    const since = filter.since?.getTime() ?? 0;
    const rows = await where(since)
      .selectAll()
      .orderBy('last_seen', 'desc')
      .orderBy('client_ip')
      .orderBy('reason')
      .limit(filter.limit)
      .execute();
    // SUM is NUMERIC on PostgreSQL (a string in pg); Number() reads both dialects alike.
    const counts = await where(since)
      .select((eb) => [
        'client_ip',
        sql<number>`sum(${eb.ref('count')})`.as('total'),
        eb.fn.max('last_seen').as('last_seen'),
      ])
      .groupBy('client_ip')
      .orderBy('total', 'desc')
      .orderBy('client_ip')
      .execute();
    const series = await where(filter.seriesSince.getTime())
      .select((eb) => ['minute', 'reason', 'report_only', sql<number>`sum(${eb.ref('count')})`.as('total')])
      .groupBy(['minute', 'reason', 'report_only'])
      .orderBy('minute')
      .execute();
    const timeSeries: DenialQueryResult['timeSeries'] = [];
    for (const row of series) {
      let point = timeSeries[timeSeries.length - 1];
      if (!point || point.minute.getTime() !== row.minute) {
        point = { minute: new Date(row.minute), counts: {} };
        timeSeries.push(point);
      }
      // Would-be denials of report-only mode are counted apart, so a chart never mixes them in.
      const key = row.report_only ? `reportOnly:${row.reason}` : row.reason;
      point.counts[key] = (point.counts[key] ?? 0) + Number(row.total);
    }
    return {
      buckets: rows.map(toBucket),
      countsByIp: counts.map((c) => ({
        clientIp: c.client_ip,
        count: Number(c.total),
        lastSeen: new Date(Number(c.last_seen)),
      })),
      timeSeries,
    };
  }

  async pruneDenials(before: Date, maxBuckets: number): Promise<{ deleted: number }> {
    return writeTransaction<DenialTables, { deleted: number }>(this.database, async (trx) => {
      let deleted = touched(
        await trx
          .deleteFrom('network_denial_counts')
          .where('minute', '<', before.getTime())
          .executeTakeFirst(),
      );
      // Whole minutes go, oldest first, so what remains of any minute is complete.
      const cut = await trx
        .selectFrom('network_denial_counts')
        .select('minute')
        .orderBy('minute', 'desc')
        .limit(1)
        .offset(maxBuckets)
        .executeTakeFirst();
      if (cut)
        deleted += touched(
          await trx.deleteFrom('network_denial_counts').where('minute', '<=', cut.minute).executeTakeFirst(),
        );
      return { deleted };
    });
  }

  async deleteDenialsForRegistry(registry: string): Promise<void> {
    await this.db.deleteFrom('network_denial_counts').where('registry', '=', registry).execute();
  }
}

function bucketRow(b: DenialBucket): BucketRow {
  return {
    registry: b.registry,
    minute: b.minute.getTime(),
    client_ip: b.clientIp,
    reason: b.reason,
    entry: b.entry,
    report_only: b.reportOnly ? 1 : 0,
    count: b.count,
    first_seen: b.firstSeen.getTime(),
    last_seen: b.lastSeen.getTime(),
    samples: JSON.stringify(b.samples),
  };
}

function compareKeys(a: BucketRow, b: BucketRow): number {
  for (const column of KEY) {
    if (a[column] < b[column]) return -1;
    if (a[column] > b[column]) return 1;
  }
  return 0;
}

function toBucket(row: BucketRow): DenialBucket {
  return {
    registry: row.registry,
    minute: new Date(row.minute),
    clientIp: row.client_ip,
    reason: row.reason,
    entry: row.entry,
    reportOnly: row.report_only === 1,
    count: row.count,
    firstSeen: new Date(row.first_seen),
    lastSeen: new Date(row.last_seen),
    samples: parseSamples(row.samples),
  };
}

function parseSamples(text: string): Sample[] {
  return JSON.parse(text) as Sample[];
}

/** Distinct samples, the stored ones first, at most DENIAL_SAMPLES. */
function mergeSamples(stored: Sample[], fresh: Sample[]): Sample[] {
  const merged = [...stored];
  for (const sample of fresh) {
    if (merged.length >= DENIAL_SAMPLES) break;
    if (!merged.some((m) => m.method === sample.method && m.path === sample.path)) merged.push(sample);
  }
  return merged;
}
