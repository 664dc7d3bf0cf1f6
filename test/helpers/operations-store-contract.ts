import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GcStore } from '../../src/store/gc-types.js';
import type { MetadataStore } from '../../src/store/types.js';
import { digestOf } from './oci.js';

/** A `GcStore` over the same database as a `MetadataStore` (it reads the registry tables). */
export type GcStoreFactory = () => Promise<{ meta: MetadataStore; gc: GcStore; dispose(): Promise<void> }>;

const REG = 'contract';

function manifestOver(...digests: string[]) {
  const content = Buffer.from(
    JSON.stringify({ schemaVersion: 2, layers: digests.map((digest) => ({ digest })) }),
  );
  return {
    digest: digestOf(content),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: content.length,
    content,
  };
}

/** The behaviour every `GcStore` must have. */
export function gcStoreContract(name: string, factory: GcStoreFactory): void {
  describe(`GcStore contract: ${name}`, () => {
    const withStores = (fn: (meta: MetadataStore, gc: GcStore) => Promise<void>) => async () => {
      const { meta, gc, dispose } = await factory();
      try {
        await meta.createRegistry({ name: REG, createdAt: new Date(), properties: {} });
        await fn(meta, gc);
      } finally {
        await dispose();
      }
    };

    it(
      'dropLinks re-checks age and references inside its transaction; dropBlobRecord only unlinked blobs',
      withStores(async (meta, gc) => {
        const used = digestOf('used');
        const stray = digestOf('stray');
        await meta.linkBlob(REG, 'repo', used, 4);
        await meta.linkBlob(REG, 'repo', stray, 5);
        await meta.putManifest(REG, 'repo', manifestOver(used), 'v1');
        const links = await gc.linkPage(REG, undefined, 10);
        assert.deepEqual(
          links.map((l) => [l.digest, l.size]).sort(),
          [
            [used, 4],
            [stray, 5],
          ].sort(),
        );
        const all = links.map(({ repository, digest }) => ({ repository, digest }));
        // Too young: nothing goes.
        assert.deepEqual(await gc.dropLinks(REG, all, 0), []);
        const dropped = await gc.dropLinks(REG, all, Date.now() + 1000);
        assert.deepEqual(dropped, [{ repository: 'repo', digest: stray }], 'the referenced link stays');
        assert.equal(await gc.dropBlobRecord(REG, used, Date.now()), undefined, 'still linked');
        assert.deepEqual(await gc.unlinkedBlobs(REG, 10), [{ digest: stray, size: 5 }]);

        await gc.takeBackupLease('b1', Date.now() + 60_000);
        assert.equal(await gc.dropBlobRecord(REG, stray, Date.now()), 'deferred');
        await gc.releaseBackupLease('b1');
        assert.equal(await gc.dropBlobRecord(REG, stray, Date.now()), 5);
        assert.equal(await gc.dropBlobRecord(REG, stray, Date.now()), undefined);
        assert.deepEqual(await gc.unlinkedBlobs(REG, 10), []);
      }),
    );

    it(
      'untaggedManifests skips tagged ones, children of an index and referrers of a present subject',
      withStores(async (meta, gc) => {
        const tagged = manifestOver(digestOf('a'));
        const child = manifestOver(digestOf('b'));
        const index = manifestOver(child.digest);
        const orphan = manifestOver(digestOf('c'));
        await meta.putManifest(REG, 'repo', tagged, 'v1');
        await meta.putManifest(REG, 'repo', child);
        await meta.putManifest(REG, 'repo', index);
        await meta.putManifest(REG, 'repo', orphan);
        const signature = { ...manifestOver(digestOf('sig')), subject: tagged.digest };
        const stranded = { ...manifestOver(digestOf('old sig')), subject: digestOf('gone') };
        await meta.putManifest(REG, 'repo', signature);
        await meta.putManifest(REG, 'repo', stranded);
        const found = await gc.untaggedManifests(REG, Date.now() + 1000, 10);
        assert.deepEqual(
          found.map((m) => m.digest).sort(),
          [index.digest, orphan.digest, stranded.digest].sort(),
        );
        assert.deepEqual(await gc.untaggedManifests(REG, 0, 10), [], 'nothing is older than the epoch');
        // Tagged since it was listed: the delete re-checks and keeps it.
        await meta.putManifest(REG, 'repo', orphan, 'late');
        assert.equal(await gc.deleteUntaggedManifest(REG, 'repo', orphan.digest, Date.now() + 1000), false);
        assert.equal(await gc.deleteUntaggedManifest(REG, 'repo', index.digest, 0), false, 'too young');
        assert.equal(await gc.deleteUntaggedManifest(REG, 'repo', index.digest, Date.now() + 1000), true);
        assert.equal(await meta.getManifest(REG, 'repo', index.digest), undefined);
        assert.notEqual(await meta.getManifest(REG, 'repo', orphan.digest), undefined);
      }),
    );

    it(
      'retention policies and runs are kept per registry, newest run first',
      withStores(async (_meta, gc) => {
        assert.equal(await gc.getRetentionPolicy(REG), undefined);
        await gc.setRetentionPolicy(REG, { days: 3, status: 'enabled', lastUpdatedTime: new Date(1000) });
        assert.deepEqual(await gc.getRetentionPolicy(REG), {
          days: 3,
          status: 'enabled',
          lastUpdatedTime: new Date(1000),
        });
        const run = (id: string, at: number) => ({
          id,
          registry: REG,
          startedAt: new Date(at),
          finishedAt: new Date(at + 1),
          dryRun: false,
          status: 'Succeeded' as const,
          trigger: 'manual' as const,
          manifestsDeleted: 0,
          linksDropped: 1,
          blobsDeleted: 1,
          bytesReclaimed: 10,
          blobsDeferred: 0,
        });
        await gc.recordRun(run('r1', 1000));
        await gc.recordRun(run('r2', 2000));
        assert.deepEqual(
          (await gc.listRuns(REG, 10)).map((r) => r.id),
          ['r2', 'r1'],
        );
        assert.equal((await gc.listRuns(REG, 10))[0]!.startedAt.getTime(), 2000);
        await gc.deleteRegistryRecords(REG);
        assert.deepEqual(await gc.listRuns(REG, 10), []);
        assert.equal(await gc.getRetentionPolicy(REG), undefined);
      }),
    );
  });
}
