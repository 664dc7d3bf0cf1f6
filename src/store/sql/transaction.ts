import { sql, type Kysely } from 'kysely';
import type { SqlDatabase } from './database.js';

/** PostgreSQL's codes for a transaction that lost a race it may simply retry. */
const RETRYABLE = new Set(['40001', '40P01']);
const ATTEMPTS = 5;

/**
 * Runs `work` in a write transaction. On SQLite it is BEGIN IMMEDIATE on the handle's one connection:
 * the write lock is taken first, so what the transaction reads is the latest commit of every connection
 * to the file and no other writer can slip in before its writes (Kysely's own SQLite transactions are
 * deferred). On PostgreSQL it is a READ COMMITTED transaction, run again (up to five times) when it was
 * chosen as a deadlock victim or failed to serialize: both mean "another transaction won, try again".
 */
export async function writeTransaction<DB, T>(
  database: SqlDatabase,
  work: (db: Kysely<DB>) => Promise<T>,
): Promise<T> {
  const db = database.db as unknown as Kysely<DB>;
  if (database.dialect === 'sqlite')
    return db.connection().execute(async (connection) => {
      await sql`begin immediate`.execute(connection);
      try {
        const result = await work(connection);
        await sql`commit`.execute(connection);
        return result;
      } catch (error) {
        await sql`rollback`.execute(connection).catch(() => undefined);
        throw error;
      }
    });
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(work);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (attempt >= ATTEMPTS || typeof code !== 'string' || !RETRYABLE.has(code)) throw error;
    }
  }
}
