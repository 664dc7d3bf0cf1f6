import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalChangeFeed, type ChangeEvent, type ChangeFeed } from '../../src/store/change-feed.js';
import { PostgresMetadataStore } from '../../src/store/postgres-metadata-store.js';
import { openSqlDatabase, type SqlDatabase } from '../../src/store/sql/database.js';
import { GC_MIGRATIONS } from '../../src/store/sql/gc-schema.js';
import { SqlGcStore } from '../../src/store/sql/gc-store.js';
import { METADATA_MIGRATIONS } from '../../src/store/sql/metadata-schema.js';
import { migrate } from '../../src/store/sql/migrations.js';
import type { ManifestRecord } from '../../src/store/types.js';
import { metadataStoreContract } from '../helpers/metadata-store-contract.js';
import { gcStoreContract } from '../helpers/operations-store-contract.js';
import { digestOf } from '../helpers/oci.js';
import { createDatabase, postgresCluster, postgresDatabase } from '../helpers/postgres.js';

const cluster = await postgresCluster();

/** Two nodes on one database: two pools, two stores, each with its own (local) change feed. */
async function twoNodes(): Promise<{
  a: PostgresMetadataStore;
  b: PostgresMetadataStore;
  /** Garbage collection running on node B. */
  gcB: SqlGcStore;
  feeds: ChangeFeed[];
  dispose(): Promise<void>;
}> {
  const url = await createDatabase(cluster!);
  const handles: SqlDatabase[] = [];
  for (let i = 0; i < 2; i++) handles.push(await openSqlDatabase({ postgresUrl: url, poolSize: 10 }));
  await Promise.all(handles.map((handle) => migrate(handle, [METADATA_MIGRATIONS, GC_MIGRATIONS])));
  const feeds = [new LocalChangeFeed(), new LocalChangeFeed()];
  const [a, b] = handles.map((handle, i) => new PostgresMetadataStore(handle, feeds[i]));
  return {
    a: a!,
    b: b!,
    gcB: new SqlGcStore(handles[1]!),
    feeds,
    async dispose() {
      await Promise.all([a!.close(), b!.close()]);
      await Promise.all(handles.map((handle) => handle.close()));
    },
  };
}

function manifest(content: string): ManifestRecord {
  const bytes = Buffer.from(content);
  return {
    digest: digestOf(bytes),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: bytes.length,
    content: bytes,
  };
}

const rounds = (n: number) => Array.from({ length: n }, (_, i) => i);

if (!cluster) {
  it('PostgresMetadataStore', async (t) => {
    await postgresDatabase(t);
  });
} else {
  metadataStoreContract('PostgresMetadataStore', async () => {
    const url = await createDatabase(cluster);
    const database = await openSqlDatabase({ postgresUrl: url, poolSize: 4 });
    await migrate(database, [METADATA_MIGRATIONS]);
    const store = new PostgresMetadataStore(database);
    return {
      store,
      async dispose() {
        await store.close();
        await database.close();
      },
    };
  });

  gcStoreContract('SqlGcStore on PostgreSQL', async () => {
    const url = await createDatabase(cluster);
    const database = await openSqlDatabase({ postgresUrl: url, poolSize: 4 });
    await migrate(database, [METADATA_MIGRATIONS, GC_MIGRATIONS]);
    const meta = new PostgresMetadataStore(database);
    const gc = new SqlGcStore(database);
    return {
      meta,
      gc,
      async dispose() {
        await gc.close();
        await meta.close();
        await database.close();
      },
    };
  });

  describe('PostgresMetadataStore: two nodes racing on one database', () => {
    it('of 20 registry updates from the same version on two nodes, exactly one wins', async () => {
      const { a, b, dispose } = await twoNodes();
      try {
        await a.createRegistry({ name: 'reg', createdAt: new Date(), properties: { n: 0 } });
        const version = (await b.getRegistry('reg'))!.version!;
        const results = await Promise.all(
          rounds(20).map((i) => (i % 2 ? a : b).updateRegistry('reg', { n: i + 1 }, version)),
        );
        assert.equal(results.filter(Boolean).length, 1);
        const winner = results.indexOf(true);
        const stored = await a.getRegistry('reg');
        assert.deepEqual(stored?.properties, { n: winner + 1 }, 'the winner’s properties are stored');
        assert.equal(stored?.version, version + 1);
      } finally {
        await dispose();
      }
    });

    it('an update and a delete at the same version: exactly one happens', async () => {
      const { a, b, dispose } = await twoNodes();
      try {
        for (const i of rounds(10)) {
          const name = `reg${i}`;
          await a.createRegistry({ name, createdAt: new Date(), properties: { n: 0 } });
          await a.putManifest(name, 'repo', manifest(`{"r":${i}}`), 'v1');
          const [updated, deleted] = await Promise.all([
            a.updateRegistry(name, { n: 1 }, 1),
            b.deleteRegistry(name, 1),
          ]);
          assert.notEqual(updated, deleted, `round ${i}: one of them wins`);
          const stored = await b.getRegistry(name);
          if (deleted) {
            assert.equal(stored, undefined);
            assert.equal(await a.resolveTag(name, 'repo', 'v1'), undefined);
          } else {
            assert.deepEqual(stored?.properties, { n: 1 });
            assert.equal(await a.deleteRegistry(name, 1), false, 'the version moved on');
          }
        }
      } finally {
        await dispose();
      }
    });

    it('20 tag moves from two nodes leave the tag on one of the pushed manifests', async () => {
      const { a, b, dispose } = await twoNodes();
      try {
        const manifests = rounds(20).map((i) => manifest(`{"move":${i}}`));
        const results = await Promise.all(
          manifests.map((m, i) => (i % 2 ? a : b).putManifest('reg', 'repo', m, 'latest')),
        );
        assert.deepEqual(
          results,
          rounds(20).map(() => undefined),
        );
        const digest = await b.resolveTag('reg', 'repo', 'latest');
        assert.ok(manifests.some((m) => m.digest === digest));
        assert.deepEqual(await a.listTags('reg', 'repo', { limit: 10 }), ['latest']);
        assert.deepEqual(await a.repositoryStats('reg', 'repo'), { tagCount: 1, manifestCount: 20 });
      } finally {
        await dispose();
      }
    });

    it('a tag pushed onto a manifest another node deletes never points at nothing', async () => {
      const { a, b, dispose } = await twoNodes();
      try {
        for (const i of rounds(40)) {
          const m = manifest(`{"doomed":${i}}`);
          await a.putManifest('reg', 'repo', m);
          const [put, removed] = await Promise.all([
            a.putManifest('reg', 'repo', m, `t${i}`),
            sleep(i % 8).then(() => b.deleteManifest('reg', 'repo', m.digest)),
          ]);
          assert.equal(put, undefined);
          assert.equal(removed, true);
          const tagged = await b.resolveTag('reg', 'repo', `t${i}`);
          if (tagged !== undefined)
            assert.ok(await b.getManifest('reg', 'repo', tagged), `round ${i}: the tag's manifest exists`);
        }
      } finally {
        await dispose();
      }
    });

    it('a manifest pushed while another node deletes its repository is either gone or whole', async () => {
      const { a, b, dispose } = await twoNodes();
      try {
        for (const i of rounds(20)) {
          const repo = `repo${i}`;
          const blob = digestOf(`layer${i}`);
          await a.linkBlob('reg', repo, blob, 10);
          const m = manifest(`{"layer":"${blob}"}`);
          const [missing] = await Promise.all([
            a.putManifest('reg', repo, m, 'v1', [blob]),
            sleep(i % 8).then(() => b.deleteRepository('reg', repo)),
          ]);
          const tagged = await b.resolveTag('reg', repo, 'v1');
          const exists = await b.repositoryExists('reg', repo);
          if (tagged !== undefined) {
            assert.equal(missing, undefined);
            assert.ok(exists, `round ${i}: a tagged manifest's repository exists`);
            assert.deepEqual(await b.linkedBlob('reg', repo, blob), { size: 10 });
          } else {
            assert.equal(exists, false, `round ${i}: the repository was deleted whole`);
            assert.equal(await b.getManifest('reg', repo, m.digest), undefined);
          }
        }
      } finally {
        await dispose();
      }
    });

    it('a manifest put never commits over a link another node removed first', async () => {
      const { a, b, dispose } = await twoNodes();
      try {
        const blob = digestOf('shared layer');
        for (const i of rounds(10)) {
          await a.linkBlob('reg', 'repo', blob, 12);
          assert.equal(await b.unlinkBlob('reg', 'repo', blob), true);
          // B's unlink committed: A's put must see it, on A's own pool.
          assert.equal(await a.putManifest('reg', 'repo', manifest(`{"u":${i}}`), 'v', [blob]), blob);
        }
        assert.equal(await a.resolveTag('reg', 'repo', 'v'), undefined);
      } finally {
        await dispose();
      }
    });

    it('garbage collection on one node never drops a link a manifest pushed on the other needs', async () => {
      const { a, gcB, dispose } = await twoNodes();
      try {
        for (const i of rounds(40)) {
          const repo = `repo${i}`;
          const layer = digestOf(`gc layer ${i}`);
          await a.linkBlob('reg', repo, layer, 7);
          const m = manifest(`{"layers":[{"digest":"${layer}"}]}`);
          const [missing, dropped] = await Promise.all([
            a.putManifest('reg', repo, m, 'v1', [layer]),
            // Started a little later each round, so some rounds land inside the put's transaction.
            sleep(i % 8).then(() =>
              gcB.dropLinks('reg', [{ repository: repo, digest: layer }], Date.now() + 60_000),
            ),
          ]);
          if (missing === undefined) {
            assert.deepEqual(dropped, [], `round ${i}: the link of a stored manifest stays`);
            assert.deepEqual(await a.linkedBlob('reg', repo, layer), { size: 7 });
          } else {
            assert.equal(missing, layer);
            assert.equal(await a.getManifest('reg', repo, m.digest), undefined);
          }
          // The blob record goes only when nothing links it.
          const record = await gcB.dropBlobRecord('reg', layer, Date.now());
          assert.equal(record, missing === undefined ? undefined : 7, `round ${i}`);
        }
      } finally {
        await dispose();
      }
    });

    it('a blob linked again on one node keeps its record from garbage collection on the other', async () => {
      const { a, b, gcB, dispose } = await twoNodes();
      try {
        for (const i of rounds(20)) {
          const blob = digestOf(`relinked ${i}`);
          await a.linkBlob('reg', 'repo', blob, 3);
          await b.unlinkBlob('reg', 'repo', blob);
          const [, dropped] = await Promise.all([
            a.linkBlob('reg', 'other', blob, 3),
            gcB.dropBlobRecord('reg', blob, Date.now()),
          ]);
          assert.ok(dropped === undefined || dropped === 3, `round ${i}`);
          // Deleted first and linked anew, or linked first and kept: either way the record is there.
          assert.deepEqual(
            await b.findBlob('reg', blob),
            { size: 3 },
            `round ${i}: the linked blob is known`,
          );
          assert.deepEqual(await b.linkedBlob('reg', 'other', blob), { size: 3 }, `round ${i}`);
        }
      } finally {
        await dispose();
      }
    });

    it('of two nodes writing the same chunk of an upload, exactly one moves it on', async () => {
      const { a, b, dispose } = await twoNodes();
      try {
        const now = new Date();
        await a.createUpload({
          registry: 'reg',
          repository: 'repo',
          id: 'u',
          offset: 0,
          createdAt: now,
          updatedAt: now,
        });
        let offset = 0;
        for (const round of rounds(5)) {
          const results = await Promise.all(
            rounds(20).map((i) =>
              (i % 2 ? a : b).advanceUpload('reg', 'u', offset, offset + 100 + i, new Date()),
            ),
          );
          assert.equal(results.filter(Boolean).length, 1, `round ${round}`);
          offset += 100 + results.indexOf(true);
          assert.equal((await b.getUpload('reg', 'u'))?.offset, offset);
        }
        assert.equal(await b.markUploadCommitting('reg', 'u', digestOf('x')), true);
        assert.equal((await a.getUpload('reg', 'u'))?.committing, digestOf('x'));
        assert.equal(await a.deleteUpload('reg', 'u'), true);
        assert.equal(await b.markUploadCommitting('reg', 'u', digestOf('x')), false);
      } finally {
        await dispose();
      }
    });

    it('publishes registry and manifest events after commit, on the store’s feed', async () => {
      const { a, b, feeds, dispose } = await twoNodes();
      try {
        const seen: ChangeEvent[] = [];
        const unsubscribe = a.onChange((event) => seen.push(event));
        const other: ChangeEvent[] = [];
        b.onChange((event) => other.push(event));
        await a.createRegistry({ name: 'reg', createdAt: new Date(), properties: {} });
        await a.updateRegistry('reg', { x: 1 });
        const m = manifest('{"events":1}');
        await a.putManifest('reg', 'repo', m, 'v1');
        await a.putManifest('reg', 'repo', manifest('{"untagged":1}'));
        await a.deleteTag('reg', 'repo', 'v1');
        await a.deleteTag('reg', 'repo', 'v1');
        await a.deleteManifest('reg', 'repo', m.digest);
        await a.deleteRepository('reg', 'repo');
        // A failed put stores nothing and announces nothing.
        await a.putManifest('reg', 'repo', manifest('{"x":1}'), 'v2', [digestOf('absent')]);
        feeds[0]!.publish({ kind: 'ipSet', name: 'office' });
        feeds[0]!.publish({ kind: 'resync' });
        await a.deleteRegistry('reg');
        unsubscribe();
        await a.createRegistry({ name: 'later', createdAt: new Date(), properties: {} });
        assert.deepEqual(seen, [
          { kind: 'registry', registry: 'reg', change: 'created' },
          { kind: 'registry', registry: 'reg', change: 'updated' },
          { kind: 'manifest', registry: 'reg', repository: 'repo', digest: m.digest, tag: 'v1' },
          {
            kind: 'manifest',
            registry: 'reg',
            repository: 'repo',
            digest: manifest('{"untagged":1}').digest,
          },
          { kind: 'manifest', registry: 'reg', repository: 'repo', tag: 'v1' },
          { kind: 'manifest', registry: 'reg', repository: 'repo', digest: m.digest },
          { kind: 'manifest', registry: 'reg', repository: 'repo' },
          { kind: 'resync' },
          { kind: 'registry', registry: 'reg', change: 'deleted' },
        ]);
        assert.deepEqual(other, [], 'a local feed does not cross nodes (PgChangeFeed does)');
      } finally {
        await dispose();
      }
    });
  });
}
