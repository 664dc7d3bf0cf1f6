import type { Generated, Kysely } from 'kysely';
import type { SignInRecord, SignInResult } from '../types.js';
import type { AnyKysely, SqlDatabase } from './database.js';
import { ALL_ROWS, chunks, greatest } from './statements.js';
import { writeTransaction } from './transaction.js';

/** The sign-in log's table, as the embedded store has always had it (`rowid`: see `runDdl`). */
export const SIGN_IN_DDL = `
CREATE TABLE IF NOT EXISTS sign_ins (
  ROWID_COLUMN
  minute INTEGER NOT NULL,
  registry TEXT NOT NULL,
  identity TEXT NOT NULL,
  client_ip TEXT NOT NULL,
  listener TEXT NOT NULL,
  result TEXT NOT NULL,
  count INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  PRIMARY KEY (minute, registry, identity, client_ip, listener, result)
);
CREATE INDEX IF NOT EXISTS sign_ins_by_registry ON sign_ins (registry, minute);
`;

interface SignInRow {
  rowid: Generated<number>;
  minute: number;
  registry: string;
  identity: string;
  client_ip: string;
  listener: 'data' | 'management';
  result: SignInResult;
  count: number;
  last_seen: number;
}

interface SignInTables {
  sign_ins: SignInRow;
}

/** Sign-in rows per upsert statement (8 parameters each). */
const SIGN_IN_ROWS_PER_STATEMENT = 500;
const SIGN_IN_KEY = ['minute', 'registry', 'identity', 'client_ip', 'listener', 'result'] as const;

/** The sign-in log over the shared SQL layer: counts added by every node, pruned to a bound. */
export class SqlSignInLogStore {
  private readonly db: Kysely<SignInTables>;

  constructor(private readonly database: SqlDatabase) {
    this.db = database.db as Kysely<SignInTables>;
  }

  async appendSignIns(records: SignInRecord[]): Promise<void> {
    // One row per key: a single upsert statement may not touch a row twice on PostgreSQL. Sorted, so
    // two nodes upserting overlapping batches lock the rows in the same order and cannot deadlock.
    const merged = new Map<string, Omit<SignInRow, 'rowid'>>();
    for (const r of records) {
      const row = {
        minute: r.minute.getTime(),
        registry: r.registry,
        identity: r.identity,
        client_ip: r.clientIp,
        listener: r.listener,
        result: r.result,
        count: r.count,
        last_seen: r.lastSeen.getTime(),
      };
      const key = JSON.stringify(SIGN_IN_KEY.map((column) => row[column]));
      const seen = merged.get(key);
      if (seen) {
        seen.count += row.count;
        seen.last_seen = Math.max(seen.last_seen, row.last_seen);
      } else merged.set(key, row);
    }
    const rows = [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
    if (rows.length === 0) return;
    const dialect = this.database.dialect;
    const upsert = (db: Kysely<SignInTables>, slice: typeof rows) =>
      db
        .insertInto('sign_ins')
        .values(slice)
        .onConflict((oc) =>
          oc.columns(SIGN_IN_KEY).doUpdateSet((eb) => ({
            // Counts add up in the database, so flushes from several nodes at once lose nothing.
            count: eb('sign_ins.count', '+', eb.ref('excluded.count')),
            last_seen: greatest(dialect, 'sign_ins.last_seen', 'excluded.last_seen'),
          })),
        )
        .execute();
    const slices = chunks(rows, SIGN_IN_ROWS_PER_STATEMENT);
    if (slices.length === 1) await upsert(this.db, slices[0]!);
    else
      await writeTransaction<SignInTables, void>(this.database, async (trx) => {
        for (const slice of slices) await upsert(trx, slice);
      });
  }

  async querySignIns(filter: {
    registry?: string;
    since?: Date;
    result?: SignInResult;
    limit: number;
  }): Promise<SignInRecord[]> {
    let query = this.db
      .selectFrom('sign_ins')
      .select(['minute', 'registry', 'identity', 'client_ip', 'listener', 'result', 'count', 'last_seen'])
      .where('minute', '>=', filter.since?.getTime() ?? 0);
    if (filter.registry !== undefined) query = query.where('registry', '=', filter.registry);
    if (filter.result !== undefined) query = query.where('result', '=', filter.result);
    const rows = await query.orderBy('last_seen', 'desc').limit(filter.limit).execute();
    return rows.map((r) => ({
      minute: new Date(r.minute),
      registry: r.registry,
      identity: r.identity,
      clientIp: r.client_ip,
      listener: r.listener,
      result: r.result,
      count: r.count,
      lastSeen: new Date(r.last_seen),
    }));
  }

  async pruneSignIns(before: Date, maxRows: number): Promise<void> {
    await this.db.deleteFrom('sign_ins').where('minute', '<', before.getTime()).execute();
    await this.db
      .deleteFrom('sign_ins')
      .where(
        'rowid',
        'in',
        this.db
          .selectFrom('sign_ins')
          .select('rowid')
          .orderBy('minute', 'desc')
          .limit(ALL_ROWS)
          .offset(maxRows),
      )
      .execute();
  }
}

/** Deletes a registry's sign-in rows (inside the caller's transaction). */
export async function deleteSignInsOf(db: AnyKysely, registry: string): Promise<void> {
  await db.deleteFrom('sign_ins').where('registry', '=', registry).execute();
}
