import { sql, type ColumnDefinitionBuilder, type Kysely } from 'kysely';
import type { SqlDatabase, SqlDialect } from './database.js';
import { bytesType, registerMigrations, type MigrationSet } from './migrations.js';

/**
 * The registry-content tables, with the names, columns and encodings the SQLite metadata store has
 * (times are epoch milliseconds, JSON is text, manifest bytes are a byte string), so a query written
 * once (the garbage collector's) runs on both dialects.
 */
export interface MetadataTables {
  registries: { name: string; created_at: number; properties: string; version: number };
  repositories: { registry: string; name: string; created_at: number };
  blobs: { registry: string; digest: string; size: number; created_at: number };
  blob_links: { registry: string; repository: string; digest: string; linked_at: number };
  manifests: {
    registry: string;
    repository: string;
    digest: string;
    media_type: string;
    size: number;
    content: Buffer;
    subject: string | null;
    artifact_type: string | null;
    annotations: string | null;
    created_at: number;
  };
  tags: { registry: string; repository: string; tag: string; digest: string; updated_at: number };
  uploads: {
    registry: string;
    id: string;
    repository: string;
    offset: number;
    created_at: number;
    updated_at: number;
    committing: string | null;
  };
}

/** A Kysely handle (or transaction) typed with the metadata tables. */
export type MetadataDb = Kysely<MetadataTables>;

/** The metadata tables' view of a shared database handle. */
export function metadataDb(database: SqlDatabase): MetadataDb {
  return database.db as unknown as MetadataDb;
}

/**
 * A key column. PostgreSQL compares text by the database's collation, which may order 'C' after 'a'
 * (en_US); SQLite compares bytes. Tag and repository pages (`n`/`last`) must agree on both, so keys
 * use the byte order "C" collation there.
 */
function key(dialect: SqlDialect) {
  return (column: ColumnDefinitionBuilder) =>
    (dialect === 'postgres' ? column.modifyFront(sql`collate "C"`) : column).notNull();
}

const ATTEMPTS = 5;

const notNull = (column: ColumnDefinitionBuilder) => column.notNull();

/**
 * The metadata tables as the SQLite store creates them. `if not exists` everywhere: on a SQLite file the
 * SQLite metadata store may have created them first (it manages its own schema), and the result is the
 * same tables either way.
 */
export const METADATA_MIGRATIONS: MigrationSet = {
  '0001-metadata-tables': {
    async up(db, dialect) {
      const k = key(dialect);
      await db.schema
        .createTable('registries')
        .ifNotExists()
        .addColumn('name', 'text', (c) => k(c).primaryKey())
        .addColumn('created_at', 'bigint', notNull)
        .addColumn('properties', 'text', notNull)
        .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
        .execute();
      await db.schema
        .createTable('repositories')
        .ifNotExists()
        .addColumn('registry', 'text', k)
        .addColumn('name', 'text', k)
        .addColumn('created_at', 'bigint', notNull)
        .addPrimaryKeyConstraint('repositories_pkey', ['registry', 'name'])
        .execute();
      await db.schema
        .createTable('blobs')
        .ifNotExists()
        .addColumn('registry', 'text', k)
        .addColumn('digest', 'text', k)
        .addColumn('size', 'bigint', notNull)
        .addColumn('created_at', 'bigint', notNull)
        .addPrimaryKeyConstraint('blobs_pkey', ['registry', 'digest'])
        .execute();
      await db.schema
        .createTable('blob_links')
        .ifNotExists()
        .addColumn('registry', 'text', k)
        .addColumn('repository', 'text', k)
        .addColumn('digest', 'text', k)
        .addColumn('linked_at', 'bigint', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('blob_links_pkey', ['registry', 'repository', 'digest'])
        .execute();
      await db.schema
        .createIndex('blob_links_by_digest')
        .ifNotExists()
        .on('blob_links')
        .columns(['registry', 'digest'])
        .execute();
      await db.schema
        .createTable('manifests')
        .ifNotExists()
        .addColumn('registry', 'text', k)
        .addColumn('repository', 'text', k)
        .addColumn('digest', 'text', k)
        .addColumn('media_type', 'text', notNull)
        .addColumn('size', 'bigint', notNull)
        .addColumn('content', bytesType(dialect), notNull)
        .addColumn('subject', 'text', (c) => (dialect === 'postgres' ? c.modifyFront(sql`collate "C"`) : c))
        .addColumn('artifact_type', 'text')
        .addColumn('annotations', 'text')
        .addColumn('created_at', 'bigint', notNull)
        .addPrimaryKeyConstraint('manifests_pkey', ['registry', 'repository', 'digest'])
        .execute();
      await db.schema
        .createIndex('manifests_by_subject')
        .ifNotExists()
        .on('manifests')
        .columns(['registry', 'repository', 'subject'])
        .where(sql.ref('subject'), 'is not', null)
        .execute();
      await db.schema
        .createTable('tags')
        .ifNotExists()
        .addColumn('registry', 'text', k)
        .addColumn('repository', 'text', k)
        .addColumn('tag', 'text', k)
        .addColumn('digest', 'text', k)
        .addColumn('updated_at', 'bigint', notNull)
        .addPrimaryKeyConstraint('tags_pkey', ['registry', 'repository', 'tag'])
        .execute();
      await db.schema
        .createIndex('tags_by_digest')
        .ifNotExists()
        .on('tags')
        .columns(['registry', 'repository', 'digest'])
        .execute();
      await db.schema
        .createTable('uploads')
        .ifNotExists()
        .addColumn('registry', 'text', k)
        .addColumn('id', 'text', k)
        .addColumn('repository', 'text', notNull)
        .addColumn('offset', 'bigint', notNull)
        .addColumn('created_at', 'bigint', notNull)
        .addColumn('updated_at', 'bigint', notNull)
        .addColumn('committing', 'text')
        .addPrimaryKeyConstraint('uploads_pkey', ['registry', 'id'])
        .execute();
      await db.schema
        .createIndex('uploads_by_age')
        .ifNotExists()
        .on('uploads')
        .column('updated_at')
        .execute();
    },
  },
};

registerMigrations(METADATA_MIGRATIONS);

/**
 * Makes sure a row exists and holds a key-share lock on it until the transaction ends, so a concurrent
 * DELETE of it (another node's repository delete, garbage collection) waits for this transaction and
 * then sees what it wrote. `insert` is an INSERT … ON CONFLICT DO NOTHING (which takes no lock on an
 * existing row); `lock` selects the row FOR KEY SHARE. A delete that commits between the two makes the
 * lock find nothing, and the insert is tried again.
 */
export async function ensureLockedRow(
  insert: () => Promise<unknown>,
  lock: () => Promise<unknown>,
): Promise<void> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    await insert();
    if ((await lock()) !== undefined) return;
  }
  throw new Error('a row was deleted under every attempt to insert it');
}

/** Splits `items` into chunks small enough for one `IN (…)` list. */
export function chunks<T>(items: readonly T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
