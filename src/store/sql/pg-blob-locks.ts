import pg from 'pg';
import { InProcessBlobLocks, type BlobLocks } from '../../registry/blob-locks.js';

/** The first key of every Berth blob lock, so they never meet another user's advisory locks. */
const BLOB_LOCK_CLASS = 0x42657274; // "Bert"

/**
 * The per-digest blob lock shared by every node on one PostgreSQL database: a session-level
 * `pg_advisory_lock(class, hashtext(registry/digest))` on a connection held for the duration of the
 * work. Waiters on this node queue in process first, so a burst on one digest holds one connection,
 * not one per waiter. The connections come from a small pool of their own: the work itself uses the
 * stores' pool, and sharing it could leave every connection held by a lock waiting for a free one.
 * A hash collision between two digests only makes them wait for each other.
 */
export class PgAdvisoryBlobLocks implements BlobLocks {
  private readonly local = new InProcessBlobLocks();
  private readonly pool: pg.Pool;

  constructor(url: string, poolSize = 4) {
    this.pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 10_000 });
    // An idle connection the server dropped is replaced by the pool; it must not crash the process.
    this.pool.on('error', () => undefined);
  }

  /** Runs `work` while this node, and then the database, grant the lock of `registry`'s `digest`. */
  withLock<T>(registry: string, digest: string, work: () => Promise<T>): Promise<T> {
    return this.local.withLock(registry, digest, async () => {
      const client = await this.pool.connect();
      const key = `${registry}/${digest}`;
      let broken = false;
      try {
        await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [BLOB_LOCK_CLASS, key]);
        try {
          return await work();
        } finally {
          await client
            .query('SELECT pg_advisory_unlock($1, hashtext($2))', [BLOB_LOCK_CLASS, key])
            .catch(() => (broken = true));
        }
      } catch (error) {
        broken = true;
        throw error;
      } finally {
        // A connection whose unlock failed may still hold the lock: it is closed, which releases it.
        client.release(broken);
      }
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
