import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';

/** Which SQL engine a `SqlDatabase` talks to; the few statements that differ branch on it. */
export type SqlDialect = 'sqlite' | 'postgres';

/**
 * The tables are typed by each store (`db.withTables<…>()`), so the handle itself knows none of them.
 * Kysely's own helpers take `Kysely<any>` for the same reason.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyKysely = Kysely<any>;

/** One SQL database, shared by every store that runs on it. */
export interface SqlDatabase {
  dialect: SqlDialect;
  db: AnyKysely;
  close(): Promise<void>;
}

/** Where the database is: a SQLite file (the embedded default) or a PostgreSQL URL. */
export type SqlDatabaseSpec = { sqlitePath: string } | { postgresUrl: string; poolSize?: number };

/** Raised when the configured database cannot be opened; names the setting, never the password. */
export class DatabaseConfigError extends Error {}

const INT8_OID = 20;

/**
 * PostgreSQL returns BIGINT (int8) as strings, because it can exceed 2^53. Berth's BIGINT columns are
 * epoch milliseconds, byte sizes and counters, all far below that, so they are parsed as numbers; the
 * stores then read the same JS types on both dialects.
 */
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

/**
 * Opens the database and checks that it answers. A PostgreSQL that is unreachable or refuses the
 * credentials fails here, at start-up, with a message naming the setting.
 */
export async function openSqlDatabase(spec: SqlDatabaseSpec): Promise<SqlDatabase> {
  if ('sqlitePath' in spec) {
    const sqlite = new Database(spec.sqlitePath);
    // The same settings as every other connection to the embedded file (see ../sqlite.ts).
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('busy_timeout = 5000');
    const db = new Kysely({ dialect: new SqliteDialect({ database: sqlite }) });
    return { dialect: 'sqlite', db, close: () => db.destroy() };
  }
  const url = parsePostgresUrl(spec.postgresUrl);
  const pool = new pg.Pool({
    connectionString: spec.postgresUrl,
    max: spec.poolSize ?? 10,
    connectionTimeoutMillis: 10_000,
    // A stuck statement must not hold a pooled connection (and a request) forever.
    statement_timeout: 60_000,
    types: pgTypes,
  });
  // An idle pooled connection the server dropped must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new DatabaseConfigError(
      `database (BERTH_DATABASE_URL): cannot connect to PostgreSQL at ${url.host}/${url.database}: ${(error as Error).message}`,
    );
  }
  const db = new Kysely({ dialect: new PostgresDialect({ pool }) });
  return { dialect: 'postgres', db, close: () => db.destroy() };
}

/** The parts of a PostgreSQL URL worth showing in an error: never the user's password. */
export function parsePostgresUrl(value: string): { host: string; database: string } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DatabaseConfigError(
      'database (BERTH_DATABASE_URL): not a URL; expected postgres://user:password@host:port/database',
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    throw new DatabaseConfigError(
      `database (BERTH_DATABASE_URL): unsupported scheme '${url.protocol}'; expected postgres://user:password@host:port/database`,
    );
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database)
    throw new DatabaseConfigError(
      'database (BERTH_DATABASE_URL): the URL names no database (postgres://…/<database>)',
    );
  return { host: url.host || 'localhost', database };
}
