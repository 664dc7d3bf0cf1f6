import { sql, type RawBuilder } from 'kysely';
import type { ChangeEvent, ChangeFeed } from '../change-feed.js';
import type { AnyKysely, SqlDialect } from './database.js';

/**
 * A transaction-scoped PostgreSQL advisory lock on (`space`, `key`), held until the transaction ends.
 * Serialises what row locks cannot (a count over rows that do not exist yet); a no-op on SQLite, whose
 * IMMEDIATE transaction already excludes every other writer.
 */
export async function lockKey(db: AnyKysely, dialect: SqlDialect, space: number, key: string): Promise<void> {
  if (dialect === 'postgres')
    await sql`select pg_advisory_xact_lock(${space}::int, hashtext(${key}))`.execute(db);
}

/** The larger of two values: SQLite's scalar `max(a, b)` is PostgreSQL's `greatest(a, b)`. */
export function greatest(
  dialect: SqlDialect,
  a: RawBuilder<unknown> | string,
  b: RawBuilder<unknown> | string,
) {
  return sql<number>`${sql.raw(dialect === 'postgres' ? 'greatest' : 'max')}(${ref(a)}, ${ref(b)})`;
}

/** The smaller of two values (`min(a, b)` on SQLite, `least(a, b)` on PostgreSQL). */
export function least(dialect: SqlDialect, a: RawBuilder<unknown> | string, b: RawBuilder<unknown> | string) {
  return sql<number>`${sql.raw(dialect === 'postgres' ? 'least' : 'min')}(${ref(a)}, ${ref(b)})`;
}

function ref(value: RawBuilder<unknown> | string) {
  return typeof value === 'string' ? sql.ref(value) : value;
}

/** How many rows an insert, update or delete touched, as a number. */
export function touched(result: {
  numInsertedOrUpdatedRows?: bigint | undefined;
  numUpdatedRows?: bigint;
  numDeletedRows?: bigint;
}): number {
  return Number(result.numInsertedOrUpdatedRows ?? result.numUpdatedRows ?? result.numDeletedRows ?? 0);
}

/**
 * Runs one store's DDL, written once in SQLite's words (the embedded database's exact schema, so files
 * made by earlier versions match), and translated for PostgreSQL where the two must differ: INTEGER
 * columns hold epoch milliseconds and counts, so they are BIGINT there; `WITHOUT ROWID` is SQLite's alone;
 * and a table whose queries order by SQLite's implicit `rowid` (insertion order) gets an identity column
 * of that name (`ROWID_COLUMN` in the text).
 */
export async function runDdl(db: AnyKysely, dialect: SqlDialect, ddl: string): Promise<void> {
  const text =
    dialect === 'postgres'
      ? ddl
          .replace(/\bINTEGER\b/g, 'BIGINT')
          .replace(/\)\s*WITHOUT ROWID/g, ')')
          .replace(/ROWID_COLUMN/g, 'rowid BIGINT GENERATED ALWAYS AS IDENTITY,')
      : ddl.replace(/ROWID_COLUMN\s*/g, '');
  // better-sqlite3 prepares one statement at a time.
  for (const statement of text.split(';').map((s) => s.trim()))
    if (statement) await sql.raw(statement).execute(db);
}

/** `items` in slices of at most `size` (bounded statements: parameters per query are limited). */
export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A large LIMIT for "every row after OFFSET n" (SQLite has no OFFSET without LIMIT). */
export const ALL_ROWS = Number.MAX_SAFE_INTEGER;

/** Publishes `events` on `feed` when the write `changed` something; returns `changed`. */
export function publishIf(feed: ChangeFeed | undefined, changed: boolean, ...events: ChangeEvent[]): boolean {
  if (changed) for (const event of events) feed?.publish(event);
  return changed;
}
