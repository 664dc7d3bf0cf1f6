import type { PortalSession, SessionStore } from '../../auth/sessions.js';
import type { AnyKysely, SqlDatabase } from './database.js';
import { registerMigrations, type MigrationSet } from './migrations.js';

/** The portal's sessions table: a token's hash, never the token. */
export const SESSION_MIGRATIONS: MigrationSet = {
  '0300-sessions-table': {
    async up(db) {
      await db.schema
        .createTable('portal_sessions')
        .ifNotExists()
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('principal_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('portal_sessions_created')
        .ifNotExists()
        .on('portal_sessions')
        .column('created_at')
        .execute();
    },
  },
};
registerMigrations(SESSION_MIGRATIONS);

interface SessionRow {
  token_hash: string;
  principal_id: string;
  created_at: number;
  last_used: number;
}

/**
 * Portal sessions in the database every node shares, so a browser keeps its session whichever node
 * the load balancer picks, and signing out on one node ends it on all. One query layer for both dialects.
 */
export class SqlSessionStore implements SessionStore {
  private readonly db: AnyKysely;

  constructor(database: SqlDatabase) {
    this.db = database.db;
  }

  async insert(tokenHash: string, session: PortalSession): Promise<void> {
    await this.db
      .insertInto('portal_sessions')
      .values({
        token_hash: tokenHash,
        principal_id: session.principalId,
        created_at: session.createdAt,
        last_used: session.lastUsed,
      })
      .execute();
  }

  async get(tokenHash: string): Promise<PortalSession | undefined> {
    const row = (await this.db
      .selectFrom('portal_sessions')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst()) as SessionRow | undefined;
    return row && { principalId: row.principal_id, createdAt: row.created_at, lastUsed: row.last_used };
  }

  async touch(tokenHash: string, lastUsed: number): Promise<void> {
    await this.db
      .updateTable('portal_sessions')
      .set({ last_used: lastUsed })
      .where('token_hash', '=', tokenHash)
      .where('last_used', '<', lastUsed)
      .execute();
  }

  async delete(tokenHash: string): Promise<void> {
    await this.db.deleteFrom('portal_sessions').where('token_hash', '=', tokenHash).execute();
  }

  async deleteExpired(usedBefore: number, createdBefore: number): Promise<void> {
    await this.db
      .deleteFrom('portal_sessions')
      .where((eb) => eb.or([eb('last_used', '<', usedBefore), eb('created_at', '<', createdBefore)]))
      .execute();
  }

  async trim(keep: number): Promise<void> {
    const newest = this.db
      .selectFrom('portal_sessions')
      .select('token_hash')
      .orderBy('created_at', 'desc')
      .orderBy('token_hash', 'desc')
      .limit(Math.max(0, keep));
    await this.db.deleteFrom('portal_sessions').where('token_hash', 'not in', newest).execute();
  }

  async count(): Promise<number> {
    const row = (await this.db
      .selectFrom('portal_sessions')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()) as { n: number | string };
    return Number(row.n);
  }
}
