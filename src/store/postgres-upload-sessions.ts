import type { MetadataDb } from './sql/metadata-schema.js';
import { uploadFromRow } from './metadata-rows.js';
import type { UploadSession } from './types.js';

/**
 * Upload sessions in the shared `uploads` table (the PostgreSQL metadata store's part for them). Every
 * write is one statement: an advance is a compare-and-swap on the offset, so of two nodes writing the
 * same chunk of an upload exactly one moves it on.
 */
export class PostgresUploadSessions {
  constructor(private readonly db: MetadataDb) {}

  /** Records a new session. */
  async create(session: UploadSession): Promise<void> {
    await this.db
      .insertInto('uploads')
      .values({
        registry: session.registry,
        id: session.id,
        repository: session.repository,
        offset: session.offset,
        created_at: session.createdAt.getTime(),
        updated_at: session.updatedAt.getTime(),
        committing: null,
      })
      .execute();
  }

  /** One session, or undefined. */
  async get(registry: string, id: string): Promise<UploadSession | undefined> {
    const row = await this.db
      .selectFrom('uploads')
      .selectAll()
      .where('registry', '=', registry)
      .where('id', '=', id)
      .executeTakeFirst();
    return row && uploadFromRow(row);
  }

  /** Moves the offset from `expectedOffset` to `offset`; false when another writer got there first. */
  async advance(
    registry: string,
    id: string,
    expectedOffset: number,
    offset: number,
    at: Date,
  ): Promise<boolean> {
    const result = await this.db
      .updateTable('uploads')
      .set({ offset, updated_at: at.getTime() })
      .where('registry', '=', registry)
      .where('id', '=', id)
      .where('offset', '=', expectedOffset)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Removes a session; false when there was none. */
  async delete(registry: string, id: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('uploads')
      .where('registry', '=', registry)
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Sessions not touched since `before`, oldest first. */
  async listStale(before: Date, limit: number): Promise<UploadSession[]> {
    const rows = await this.db
      .selectFrom('uploads')
      .selectAll()
      .where('updated_at', '<', before.getTime())
      .orderBy('updated_at')
      .limit(limit)
      .execute();
    return rows.map(uploadFromRow);
  }

  /** Records the verified digest the session's bytes are being committed as. */
  async markCommitting(registry: string, id: string, digest: string): Promise<boolean> {
    const result = await this.db
      .updateTable('uploads')
      .set({ committing: digest })
      .where('registry', '=', registry)
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** A registry's sessions in id order, at most `limit`. */
  async list(registry: string, limit: number): Promise<UploadSession[]> {
    const rows = await this.db
      .selectFrom('uploads')
      .selectAll()
      .where('registry', '=', registry)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(uploadFromRow);
  }

  /** How many sessions a registry has open. */
  async count(registry: string): Promise<number> {
    const row = await this.db
      .selectFrom('uploads')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('registry', '=', registry)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}
