import { sql, type Expression, type Kysely, type SqlBool } from 'kysely';
import type { SqlDialect } from './database.js';
import type { MetadataTables } from './metadata-schema.js';
import { registerMigrations, type MigrationSet } from './migrations.js';

/** The garbage collector's tables, beside the metadata tables it reads and writes. */
export interface GcTables extends MetadataTables {
  gc_runs: { id: string; registry: string; started_at: number; finished_at: number; record: string };
  retention_policies: { registry: string; days: number; status: string; updated_at: number };
  backup_leases: { id: string; until: number };
}

export type GcDb = Kysely<GcTables>;

/** The collector's own tables; it reads and writes the metadata tables too (same database). */
export const GC_MIGRATIONS: MigrationSet = {
  '0001-gc-tables': {
    async up(db, dialect) {
      // Keys compare bytewise on both dialects (see metadata-schema.ts).
      const text = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;
      await db.schema
        .createTable('gc_runs')
        .ifNotExists()
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('registry', text, (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('finished_at', 'bigint', (c) => c.notNull())
        .addColumn('record', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('gc_runs_by_registry')
        .ifNotExists()
        .on('gc_runs')
        .columns(['registry', 'started_at'])
        .execute();
      await db.schema
        .createTable('retention_policies')
        .ifNotExists()
        .addColumn('registry', text, (c) => c.primaryKey())
        .addColumn('days', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('backup_leases')
        .ifNotExists()
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('until', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
};

registerMigrations(GC_MIGRATIONS);

/**
 * Whether the byte string `content` contains the text `digest`. The digest's text inside a manifest's
 * bytes is a conservative test of "refers to": it can keep a blob a manifest only mentions (in an
 * annotation), never drop one it needs.
 */
export function contains(dialect: SqlDialect, content: Expression<unknown>, digest: Expression<unknown>) {
  return dialect === 'postgres'
    ? sql<SqlBool>`position(convert_to(${digest}, 'UTF8') in ${content}) > 0`
    : sql<SqlBool>`instr(${content}, ${digest}) > 0`;
}

/**
 * `m` is an untagged manifest older than `before` that no other manifest of its repository refers to
 * (as an index child), and not a referrer whose subject is still there.
 */
export function untagged(dialect: SqlDialect, before: number) {
  return sql<SqlBool>`m.created_at < ${before}
    AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.registry = m.registry AND t.repository = m.repository
                    AND t.digest = m.digest)
    AND NOT EXISTS (SELECT 1 FROM manifests p WHERE p.registry = m.registry AND p.repository = m.repository
                    AND p.digest <> m.digest AND ${contains(dialect, sql.ref('p.content'), sql.ref('m.digest'))})
    AND (m.subject IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s WHERE s.registry = m.registry
                    AND s.repository = m.repository AND s.digest = m.subject))`;
}
