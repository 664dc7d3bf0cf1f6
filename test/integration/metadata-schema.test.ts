import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openSqlDatabase } from '../../src/store/sql/database.js';
import { GC_MIGRATIONS } from '../../src/store/sql/gc-schema.js';
import { METADATA_MIGRATIONS } from '../../src/store/sql/metadata-schema.js';
import { migrate } from '../../src/store/sql/migrations.js';
import { SqliteMetadataStore } from '../../src/store/sqlite-metadata-store.js';
import { digestOf } from '../helpers/oci.js';

const TABLES = ['registries', 'repositories', 'blobs', 'blob_links', 'manifests', 'tags', 'uploads'];

/** Each metadata table's column names, in order. */
function columns(path: string): Record<string, string[]> {
  const db = new Database(path, { readonly: true });
  try {
    return Object.fromEntries(
      TABLES.map((table) => [
        table,
        (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name),
      ]),
    );
  } finally {
    db.close();
  }
}

async function migrateFile(path: string): Promise<string[]> {
  const database = await openSqlDatabase({ sqlitePath: path });
  try {
    return await migrate(database, [METADATA_MIGRATIONS, GC_MIGRATIONS]);
  } finally {
    await database.close();
  }
}

// The shared migrator runs every registered migration on the embedded file too, where the SQLite
// metadata store manages its own schema: the two must agree, in either order.
describe('the metadata migration on SQLite', () => {
  it('leaves a file the SQLite store made as it was, data included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-schema-'));
    try {
      const path = join(dir, 'metadata.db');
      const store = new SqliteMetadataStore(path);
      await store.createRegistry({ name: 'reg', createdAt: new Date(), properties: { a: 1 } });
      await store.linkBlob('reg', 'repo', digestOf('x'), 1);
      await store.close();
      const before = columns(path);
      assert.deepEqual(await migrateFile(path), ['0001-gc-tables', '0001-metadata-tables']);
      assert.deepEqual(columns(path), before);
      const again = new SqliteMetadataStore(path);
      assert.deepEqual((await again.getRegistry('reg'))?.properties, { a: 1 });
      assert.deepEqual(await again.findBlob('reg', digestOf('x')), { size: 1 });
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('creates the tables the SQLite store then opens and uses as its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-schema-'));
    try {
      const reference = join(dir, 'reference.db');
      await new SqliteMetadataStore(reference).close();
      const path = join(dir, 'metadata.db');
      await migrateFile(path);
      assert.deepEqual(columns(path), columns(reference));
      const store = new SqliteMetadataStore(path);
      const now = new Date();
      await store.createUpload({
        registry: 'reg',
        repository: 'repo',
        id: 'u',
        offset: 0,
        createdAt: now,
        updatedAt: now,
      });
      assert.equal(await store.advanceUpload('reg', 'u', 0, 10, now), true);
      assert.equal(await store.markUploadCommitting('reg', 'u', digestOf('u')), true);
      assert.equal((await store.getUpload('reg', 'u'))?.committing, digestOf('u'));
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
