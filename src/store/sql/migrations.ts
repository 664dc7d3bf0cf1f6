import { Migrator, type Migration, type MigrationProvider } from 'kysely';
import type { AnyKysely, SqlDatabase, SqlDialect } from './database.js';

/**
 * A schema step of one store. `up` runs on `db`, which on PostgreSQL is the migration's own transaction
 * (under the lock), and gets the dialect so the few DDL differences (BYTEA vs BLOB) sit side by side.
 */
export interface StoreMigration {
  up(db: AnyKysely, dialect: SqlDialect): Promise<void>;
}

/** Every store's migrations, by name (`NNNN-<store>-<what>`; Kysely applies them in name order). */
export type MigrationSet = Record<string, StoreMigration>;

/**
 * The migrations of every store that runs on the shared SQL layer. Each store file exports its own set;
 * they are collected here so one Migrator (and, on PostgreSQL, one advisory lock) covers them all.
 */
const ALL: MigrationSet[] = [];

/** Registers a store's migrations (called from the store's module, at import). */
export function registerMigrations(set: MigrationSet): void {
  ALL.push(set);
}

/**
 * Brings the schema up to date. Several nodes may start at once: Kysely's Migrator takes a lock first
 * (on PostgreSQL a transaction-scoped advisory lock), so exactly one applies each step and the others
 * wait and then find it applied. Migrations added later to an older set are applied too (unordered).
 */
export async function migrate(database: SqlDatabase, sets: MigrationSet[] = ALL): Promise<string[]> {
  const provider: MigrationProvider = {
    async getMigrations() {
      const migrations: Record<string, Migration> = {};
      for (const set of sets)
        for (const [name, step] of Object.entries(set)) {
          if (migrations[name]) throw new Error(`two migrations are named ${name}`);
          migrations[name] = { up: (db) => step.up(db, database.dialect) };
        }
      return migrations;
    },
  };
  const migrator = new Migrator({
    db: database.db,
    provider,
    allowUnorderedMigrations: true,
    migrationTableName: 'berth_migrations',
    migrationLockTableName: 'berth_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName;
    throw new Error(`schema migration ${failed ?? ''} failed: ${(error as Error).message}`);
  }
  return (results ?? []).filter((result) => result.status === 'Success').map((r) => r.migrationName);
}

/** The column type of a byte string in `dialect`. */
export function bytesType(dialect: SqlDialect): 'bytea' | 'blob' {
  return dialect === 'postgres' ? 'bytea' : 'blob';
}
