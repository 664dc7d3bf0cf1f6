import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { InProcessBlobLocks } from '../../src/registry/blob-locks.js';
import { GarbageCollector } from '../../src/registry/gc.js';
import { FsBlobStore } from '../../src/store/fs-blob-store.js';
import { PostgresMetadataStore } from '../../src/store/postgres-metadata-store.js';
import { openSqlDatabase } from '../../src/store/sql/database.js';
import { SqlGcStore } from '../../src/store/sql/gc-store.js';
import { migrate } from '../../src/store/sql/migrations.js';
import { digestOf } from '../helpers/oci.js';
import { postgresDatabase } from '../helpers/postgres.js';

it('a garbage collection run on PostgreSQL removes exactly what nothing refers to', async (t) => {
  const url = await postgresDatabase(t);
  if (!url) return;
  const dir = mkdtempSync(join(tmpdir(), 'berth-pg-gc-'));
  const database = await openSqlDatabase({ postgresUrl: url });
  // Every registered migration, as a node starting on PostgreSQL runs them.
  await migrate(database);
  const meta = new PostgresMetadataStore(database);
  const store = new SqlGcStore(database);
  const blobs = new FsBlobStore(join(dir, 'blobs'));
  const gc = new GarbageCollector(
    meta,
    store,
    blobs,
    new InProcessBlobLocks(),
    { graceMs: 0 },
    pino({ level: 'silent' }),
  );
  try {
    await meta.createRegistry({ name: 'reg', createdAt: new Date(), properties: {} });
    const push = async (repository: string, text: string) => {
      const bytes = Buffer.from(text);
      const digest = digestOf(bytes);
      await blobs.createUpload('reg', text);
      await blobs.writeUpload('reg', text, 0, Readable.from([bytes]));
      await blobs.commitUpload('reg', text, digest, bytes.length);
      await meta.linkBlob('reg', repository, digest, bytes.length);
      return digest;
    };
    const kept = await push('repo', 'layer that a tagged manifest uses');
    const retired = await push('repo', 'layer of an untagged manifest');
    const stray = await push('other', 'layer nothing uses');
    const manifestOver = (digest: string) => {
      const content = Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [{ digest }] }));
      return {
        digest: digestOf(content),
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: content.length,
        content,
      };
    };
    assert.equal(await meta.putManifest('reg', 'repo', manifestOver(kept), 'v1', [kept]), undefined);
    const untagged = manifestOver(retired);
    assert.equal(await meta.putManifest('reg', 'repo', untagged, undefined, [retired]), undefined);
    await store.setRetentionPolicy('reg', { days: 0, status: 'enabled', lastUpdatedTime: new Date() });
    // The grace period is zero, and a link must be strictly older than the run's start.
    await sleep(5);

    const report = await gc.run('reg');
    assert.equal(report.status, 'Succeeded', report.error);
    assert.equal(report.manifestsDeleted, 1);
    assert.equal(report.linksDropped, 2);
    assert.deepEqual(report.blobs.map((b) => b.digest).sort(), [retired, stray].sort());
    assert.ok(await blobs.stat('reg', kept), 'the tagged manifest’s layer is on disk');
    assert.equal(await blobs.stat('reg', retired), undefined);
    assert.equal(await blobs.stat('reg', stray), undefined);
    assert.equal(await meta.getManifest('reg', 'repo', untagged.digest), undefined);
    assert.equal(await meta.findBlob('reg', stray), undefined);
    assert.deepEqual(await meta.linkedBlob('reg', 'repo', kept), { size: 33 });
    assert.deepEqual(
      (await store.listRuns('reg', 5)).map((run) => run.id),
      [report.id],
    );
    // A second run finds nothing left to do.
    const again = await gc.run('reg');
    assert.equal(again.linksDropped + again.blobsDeleted + again.manifestsDeleted, 0);
  } finally {
    await store.close();
    await meta.close();
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
