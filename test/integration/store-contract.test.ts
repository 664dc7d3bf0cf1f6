import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../../src/store/fs-blob-store.js';
import { SqlGcStore } from '../../src/store/sql/gc-store.js';
import { SqliteMetadataStore } from '../../src/store/sqlite-metadata-store.js';
import { blobStoreContract } from '../helpers/blob-store-contract.js';
import { metadataStoreContract } from '../helpers/metadata-store-contract.js';
import { gcStoreContract } from '../helpers/operations-store-contract.js';

// The store contracts live in test/helpers so other implementations (PostgreSQL, Azure Blob Storage)
// can run the same suites from their own test files without re-running these.

function tempDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'berth-contract-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

metadataStoreContract('SqliteMetadataStore', async () => {
  const dir = tempDir();
  const store = new SqliteMetadataStore(join(dir.path, 'metadata.db'));
  return {
    store,
    async dispose() {
      await store.close();
      dir.remove();
    },
  };
});

blobStoreContract('FsBlobStore', async () => {
  const dir = tempDir();
  return { store: new FsBlobStore(join(dir.path, 'blobs')), dispose: async () => dir.remove() };
});

gcStoreContract('SqlGcStore on SQLite', async () => {
  const dir = tempDir();
  const meta = new SqliteMetadataStore(join(dir.path, 'metadata.db'));
  const gc = await SqlGcStore.openSqlite(join(dir.path, 'metadata.db'));
  return {
    meta,
    gc,
    async dispose() {
      await gc.close();
      await meta.close();
      dir.remove();
    },
  };
});
