import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { DatabaseConfigError, openSqlDatabase, type SqlDatabase } from '../../src/store/sql/database.js';
import { migrate, type MigrationSet } from '../../src/store/sql/migrations.js';
import { postgresDatabase } from '../helpers/postgres.js';

const SET: MigrationSet = {
  '0001-probe-table': {
    async up(db) {
      await db.schema
        .createTable('probe')
        .ifNotExists()
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
};

async function roundTrip(database: SqlDatabase): Promise<void> {
  assert.deepEqual(await migrate(database, [SET]), ['0001-probe-table']);
  // A second start finds the schema current.
  assert.deepEqual(await migrate(database, [SET]), []);
  const db = database.db;
  await db.insertInto('probe').values({ name: 'a', at: 1_780_000_000_123 }).execute();
  const row = await db.selectFrom('probe').selectAll().executeTakeFirstOrThrow();
  // BIGINT epoch milliseconds come back as numbers on both dialects.
  assert.deepEqual(row, { name: 'a', at: 1_780_000_000_123 });
}

describe('the shared SQL layer', () => {
  it('migrates a SQLite file once and reads BIGINT as a number', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-sql-'));
    const database = await openSqlDatabase({ sqlitePath: join(dir, 'x.db') });
    try {
      await roundTrip(database);
    } finally {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('migrates PostgreSQL once even when five nodes start at the same moment', async (t) => {
    const url = await postgresDatabase(t);
    if (!url) return;
    const nodes = await Promise.all([1, 2, 3, 4, 5].map(() => openSqlDatabase({ postgresUrl: url })));
    try {
      const applied = await Promise.all(nodes.map((node) => migrate(node, [SET])));
      assert.equal(applied.flat().length, 1, 'exactly one node applied the step');
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from berth_migrations`.execute(
        nodes[0]!.db,
      );
      assert.equal(rows[0]!.n, 1);
      await nodes[1]!.db
        .insertInto('probe')
        .values({ name: 'b', at: 2 ** 40 })
        .execute();
      const row = await nodes[2]!.db
        .selectFrom('probe')
        .selectAll()
        .where('name', '=', 'b')
        .executeTakeFirstOrThrow();
      assert.deepEqual(row, { name: 'b', at: 2 ** 40 });
    } finally {
      await Promise.all(nodes.map((node) => node.close()));
    }
  });

  it('fails fast, naming the setting and hiding the password, when PostgreSQL is unreachable', async () => {
    await assert.rejects(
      openSqlDatabase({ postgresUrl: 'postgres://berth:s3cret@127.0.0.1:1/berth' }),
      (error: unknown) => {
        assert.ok(error instanceof DatabaseConfigError);
        assert.match(
          error.message,
          /^database \(BERTH_DATABASE_URL\): cannot connect to PostgreSQL at 127\.0\.0\.1:1\/berth/,
        );
        assert.doesNotMatch(error.message, /s3cret/);
        return true;
      },
    );
    await assert.rejects(openSqlDatabase({ postgresUrl: 'mysql://x/y' }), /unsupported scheme 'mysql:'/);
    await assert.rejects(openSqlDatabase({ postgresUrl: 'postgres://127.0.0.1:5432' }), /names no database/);
  });
});
