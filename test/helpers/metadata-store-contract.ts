import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ManifestRecord, MetadataStore, UploadSession } from '../../src/store/types.js';
import { digestOf } from './oci.js';

/** Makes a fresh, empty store; `dispose` closes it and removes what it stored. */
export type StoreFactory<T> = () => Promise<{ store: T; dispose(): Promise<void> }>;

export const REG = 'contract';

function manifest(content: string, extra: Partial<ManifestRecord> = {}): ManifestRecord {
  const bytes = Buffer.from(content);
  return {
    digest: digestOf(bytes),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: bytes.length,
    content: bytes,
    ...extra,
  };
}

function session(id: string, updatedAt = new Date(), repository = 'repo'): UploadSession {
  return { registry: REG, repository, id, offset: 0, createdAt: updatedAt, updatedAt };
}

/**
 * The behaviour every `MetadataStore` must have. Run it against each implementation
 * (SQLite here; PostgreSQL when it exists) with a factory that yields an empty store.
 */
export function metadataStoreContract(name: string, factory: StoreFactory<MetadataStore>): void {
  describe(`MetadataStore contract: ${name}`, () => {
    const withStore = (fn: (store: MetadataStore) => Promise<void>) => async () => {
      const { store, dispose } = await factory();
      try {
        await store.createRegistry({ name: REG, createdAt: new Date(), properties: {} });
        await fn(store);
      } finally {
        await dispose();
      }
    };

    it(
      'registries: create once, read, update, list, and announce changes',
      withStore(async (store) => {
        const events: string[] = [];
        const unsubscribe = store.onChange((event) => {
          if (event.kind === 'registry') events.push(event.registry);
        });
        assert.equal(
          await store.createRegistry({ name: 'other', createdAt: new Date(1000), properties: { a: 1 } }),
          true,
        );
        assert.equal(
          await store.createRegistry({ name: 'other', createdAt: new Date(), properties: {} }),
          false,
        );
        const got = await store.getRegistry('other');
        assert.equal(got?.createdAt.getTime(), 1000);
        assert.deepEqual(got?.properties, { a: 1 });
        assert.equal(await store.updateRegistry('other', { b: 2 }), true);
        assert.deepEqual((await store.getRegistry('other'))?.properties, { b: 2 });
        assert.equal(await store.updateRegistry('missing', {}), false);
        assert.deepEqual(
          (await store.listRegistries()).map((r) => r.name),
          [REG, 'other'],
        );
        assert.equal(await store.getRegistry('missing'), undefined);
        unsubscribe();
        await store.updateRegistry('other', { c: 3 });
        assert.deepEqual(events, ['other', 'other']);
      }),
    );

    it(
      'registries: updates and deletes are compare-and-swap on the record version',
      withStore(async (store) => {
        await store.createRegistry({ name: 'casreg', createdAt: new Date(), properties: { n: 0 } });
        const v1 = (await store.getRegistry('casreg'))!.version!;
        assert.equal(typeof v1, 'number');
        assert.equal(await store.updateRegistry('casreg', { n: 1 }, v1), true);
        const v2 = (await store.getRegistry('casreg'))!.version!;
        assert.notEqual(v2, v1);
        // A writer that read v1 lost the race: its update and its delete are refused, nothing changes.
        assert.equal(await store.updateRegistry('casreg', { n: 99 }, v1), false);
        assert.equal(await store.deleteRegistry('casreg', v1), false);
        assert.deepEqual((await store.getRegistry('casreg'))?.properties, { n: 1 });
        // Unconditional updates still bump the version.
        assert.equal(await store.updateRegistry('casreg', { n: 2 }), true);
        const v3 = (await store.getRegistry('casreg'))!.version!;
        assert.ok(v3 !== v2 && v3 !== v1);
        assert.equal(await store.deleteRegistry('casreg', v3), true);
        assert.equal(await store.getRegistry('casreg'), undefined);
      }),
    );

    it(
      'tags: put with a manifest, resolve, move, list in lexical pages, delete',
      withStore(async (store) => {
        const m1 = manifest('{"one":1}');
        const m2 = manifest('{"two":2}');
        for (const tag of ['b', 'a', 'C', '1']) await store.putManifest(REG, 'repo', m1, tag);
        assert.equal(await store.resolveTag(REG, 'repo', 'a'), m1.digest);
        await store.putManifest(REG, 'repo', m2, 'a');
        assert.equal(await store.resolveTag(REG, 'repo', 'a'), m2.digest);
        assert.deepEqual(await store.listTags(REG, 'repo', { limit: 100 }), ['1', 'C', 'a', 'b']);
        assert.deepEqual(await store.listTags(REG, 'repo', { limit: 2 }), ['1', 'C']);
        assert.deepEqual(await store.listTags(REG, 'repo', { last: 'C', limit: 2 }), ['a', 'b']);
        assert.deepEqual(await store.listTags(REG, 'repo', { last: 'b', limit: 2 }), []);
        assert.deepEqual(await store.listTags(REG, 'other', { limit: 10 }), []);
        assert.equal(await store.deleteTag(REG, 'repo', 'a'), true);
        assert.equal(await store.deleteTag(REG, 'repo', 'a'), false);
        assert.equal(await store.resolveTag(REG, 'repo', 'a'), undefined);
        assert.ok(await store.getManifest(REG, 'repo', m2.digest), 'deleting a tag keeps the manifest');
        assert.deepEqual(await store.repositoryStats(REG, 'repo'), { tagCount: 3, manifestCount: 2 });
      }),
    );

    it(
      'manifest writes announce what changed, after they commit (caches depend on it)',
      withStore(async (store) => {
        const seen: unknown[] = [];
        const tagReads: Promise<string | undefined>[] = [];
        const unsubscribe = store.onChange((event) => {
          if (event.kind !== 'manifest') return;
          seen.push(event);
          // The event comes after the commit: a read started by the listener sees the change.
          if (event.tag !== undefined) tagReads.push(store.resolveTag(REG, 'ev', event.tag));
        });
        const m = manifest('{"events":1}');
        const child = manifest('{"events":2}');
        await store.putManifest(REG, 'ev', m, 'v1');
        await store.putManifest(REG, 'ev', child);
        // A put refused for a missing blob changed nothing, so it announces nothing.
        assert.equal(
          await store.putManifest(REG, 'ev', manifest('{}'), 'v2', [digestOf('nope')]),
          digestOf('nope'),
        );
        assert.equal(await store.deleteTag(REG, 'ev', 'v1'), true);
        assert.equal(await store.deleteTag(REG, 'ev', 'v1'), false);
        assert.equal(await store.deleteManifest(REG, 'ev', child.digest), true);
        assert.equal(await store.deleteRepository(REG, 'ev'), true);
        unsubscribe();
        await store.putManifest(REG, 'ev', m, 'v1');
        const at = (event: object) => ({ kind: 'manifest', registry: REG, repository: 'ev', ...event });
        assert.deepEqual(seen, [
          at({ digest: m.digest, tag: 'v1' }),
          at({ digest: child.digest }),
          at({ tag: 'v1' }),
          at({ digest: child.digest }),
          at({}),
        ]);
        assert.deepEqual(await Promise.all(tagReads), [m.digest, undefined]);
        const registryEvents: unknown[] = [];
        store.onChange((event) => {
          if (event.kind === 'registry') registryEvents.push(event);
        });
        assert.equal(await store.deleteRegistry(REG), true);
        assert.deepEqual(registryEvents, [{ kind: 'registry', registry: REG, change: 'deleted' }]);
      }),
    );

    it(
      'repositories: created by manifests or blob links, listed in lexical pages, scoped by registry',
      withStore(async (store) => {
        await store.createRegistry({ name: 'elsewhere', createdAt: new Date(), properties: {} });
        assert.equal(await store.repositoryExists(REG, 'b/x'), false);
        await store.putManifest(REG, 'b/x', manifest('{}'));
        await store.linkBlob(REG, 'a', digestOf('blob'), 4);
        await store.linkBlob(REG, 'c', digestOf('blob'), 4);
        await store.linkBlob('elsewhere', 'zz', digestOf('blob'), 4);
        assert.equal(await store.repositoryExists(REG, 'b/x'), true);
        assert.equal(await store.repositoryExists('elsewhere', 'b/x'), false);
        assert.deepEqual(await store.listRepositories(REG, { limit: 10 }), ['a', 'b/x', 'c']);
        assert.deepEqual(await store.listRepositories(REG, { last: 'a', limit: 1 }), ['b/x']);
        assert.deepEqual(await store.listRepositories('elsewhere', { limit: 10 }), ['zz']);
        assert.equal(await store.deleteRepository(REG, 'b/x'), true);
        assert.equal(await store.deleteRepository(REG, 'b/x'), false);
        assert.equal(await store.repositoryExists(REG, 'b/x'), false);
        assert.equal(await store.getManifest(REG, 'b/x', manifest('{}').digest), undefined);
      }),
    );

    it(
      'manifests: exact bytes round-trip, idempotent put, scoped by repository, delete takes tags',
      withStore(async (store) => {
        const bytes = Buffer.from([0x7b, 0x0a, 0x20, 0xc3, 0xa9, 0x7d, 0x00, 0xff]);
        const m: ManifestRecord = {
          digest: digestOf(bytes),
          mediaType: 'application/vnd.oci.image.index.v1+json',
          size: bytes.length,
          content: bytes,
          subject: digestOf('subject'),
          artifactType: 'application/x-test',
          annotations: { k: 'v' },
        };
        await store.putManifest(REG, 'repo', m, 'v1');
        await store.putManifest(REG, 'repo', m, 'v2');
        const got = await store.getManifest(REG, 'repo', m.digest);
        assert.ok(got);
        assert.deepEqual(Buffer.from(got.content), bytes);
        assert.equal(got.mediaType, m.mediaType);
        assert.equal(got.size, bytes.length);
        assert.equal(got.subject, m.subject);
        assert.equal(got.artifactType, m.artifactType);
        assert.deepEqual(got.annotations, { k: 'v' });
        assert.equal(await store.getManifest(REG, 'other', m.digest), undefined);
        const plain = manifest('{"plain":true}');
        await store.putManifest(REG, 'repo', plain);
        const gotPlain = await store.getManifest(REG, 'repo', plain.digest);
        assert.equal(gotPlain?.subject ?? undefined, undefined);
        assert.equal(gotPlain?.annotations ?? undefined, undefined);
        assert.deepEqual(
          await store.existingManifests(REG, 'repo', [m.digest, digestOf('nope'), plain.digest]),
          new Set([m.digest, plain.digest]),
        );
        assert.equal(await store.deleteManifest(REG, 'repo', m.digest), true);
        assert.equal(await store.deleteManifest(REG, 'repo', m.digest), false);
        assert.equal(await store.resolveTag(REG, 'repo', 'v1'), undefined);
        assert.deepEqual(await store.listTags(REG, 'repo', { limit: 10 }), []);
        assert.ok(await store.getManifest(REG, 'repo', plain.digest));
      }),
    );

    it(
      'referrers: by subject, filtered by artifactType, gone with the manifest',
      withStore(async (store) => {
        const subject = digestOf('the subject');
        const sig = manifest('{"sig":1}', {
          subject,
          artifactType: 'application/sig',
          annotations: { a: 'b' },
        });
        const sbom = manifest('{"sbom":1}', { subject, artifactType: 'application/sbom' });
        await store.putManifest(REG, 'repo', sig);
        await store.putManifest(REG, 'repo', sbom);
        await store.putManifest(REG, 'repo', manifest('{"unrelated":1}', { subject: digestOf('x') }));
        await store.putManifest(REG, 'other', manifest('{"elsewhere":1}', { subject }));
        const all = await store.listReferrers(REG, 'repo', subject);
        assert.deepEqual(all.map((r) => r.digest).sort(), [sig.digest, sbom.digest].sort());
        const found = all.find((r) => r.digest === sig.digest)!;
        assert.equal(found.mediaType, sig.mediaType);
        assert.equal(found.size, sig.size);
        assert.equal(found.artifactType, 'application/sig');
        assert.deepEqual(found.annotations, { a: 'b' });
        const filtered = await store.listReferrers(REG, 'repo', subject, 'application/sbom');
        assert.deepEqual(
          filtered.map((r) => r.digest),
          [sbom.digest],
        );
        assert.deepEqual(await store.listReferrers(REG, 'repo', subject, 'application/none'), []);
        await store.deleteManifest(REG, 'repo', sig.digest);
        assert.deepEqual(
          (await store.listReferrers(REG, 'repo', subject)).map((r) => r.digest),
          [sbom.digest],
        );
      }),
    );

    it(
      'blob links: link, look up one or many, find registry-wide, unlink',
      withStore(async (store) => {
        const d1 = digestOf('one');
        const d2 = digestOf('two');
        await store.linkBlob(REG, 'repo', d1, 3);
        await store.linkBlob(REG, 'repo', d1, 3);
        await store.linkBlob(REG, 'repo', d2, 3);
        await store.linkBlob(REG, 'other', d2, 3);
        assert.deepEqual(await store.linkedBlob(REG, 'repo', d1), { size: 3 });
        assert.equal(await store.linkedBlob(REG, 'other', d1), undefined);
        const many = await store.linkedBlobs(REG, 'repo', [d1, d2, digestOf('three')]);
        assert.deepEqual(
          [...many.entries()].sort(),
          [
            [d1, 3],
            [d2, 3],
          ].sort(),
        );
        assert.deepEqual(await store.findBlob(REG, d2), { size: 3 });
        assert.equal(await store.findBlob(REG, digestOf('three')), undefined);
        assert.equal(await store.unlinkBlob(REG, 'repo', d2), true);
        assert.equal(await store.unlinkBlob(REG, 'repo', d2), false);
        assert.equal(await store.linkedBlob(REG, 'repo', d2), undefined);
        assert.deepEqual(await store.linkedBlob(REG, 'other', d2), { size: 3 });
      }),
    );

    it(
      'uploads: create, read, advance with compare-and-set, delete',
      withStore(async (store) => {
        const created = new Date(5_000);
        await store.createUpload({ ...session('u1'), createdAt: created, updatedAt: created });
        const got = await store.getUpload(REG, 'u1');
        assert.deepEqual(got, {
          registry: REG,
          repository: 'repo',
          id: 'u1',
          offset: 0,
          createdAt: created,
          updatedAt: created,
        });
        assert.equal(await store.getUpload('elsewhere', 'u1'), undefined);
        assert.equal(await store.advanceUpload(REG, 'u1', 0, 100, new Date(6_000)), true);
        // A writer that still believes the offset is 0 loses.
        assert.equal(await store.advanceUpload(REG, 'u1', 0, 50, new Date(7_000)), false);
        const after = await store.getUpload(REG, 'u1');
        assert.equal(after?.offset, 100);
        assert.equal(after?.updatedAt.getTime(), 6_000);
        assert.equal(await store.advanceUpload(REG, 'u1', 100, 250, new Date(8_000)), true);
        assert.equal(await store.advanceUpload(REG, 'missing', 0, 1, new Date()), false);
        assert.equal(await store.deleteUpload(REG, 'u1'), true);
        assert.equal(await store.deleteUpload(REG, 'u1'), false);
        assert.equal(await store.getUpload(REG, 'u1'), undefined);
      }),
    );

    it(
      'uploads: concurrent advances from the same offset, exactly one wins',
      withStore(async (store) => {
        await store.createUpload(session('race'));
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => store.advanceUpload(REG, 'race', 0, 10 + i, new Date())),
        );
        assert.equal(results.filter(Boolean).length, 1);
      }),
    );

    it(
      'uploads: stale ones are listed oldest first, touched ones are not',
      withStore(async (store) => {
        await store.createUpload(session('old', new Date(1_000)));
        await store.createUpload(session('older', new Date(500)));
        await store.createUpload(session('fresh', new Date(10_000)));
        await store.createUpload(session('touched', new Date(1_000)));
        await store.advanceUpload(REG, 'touched', 0, 1, new Date(20_000));
        const stale = await store.listStaleUploads(new Date(5_000), 10);
        assert.deepEqual(
          stale.map((s) => s.id),
          ['older', 'old'],
        );
        assert.deepEqual(
          (await store.listStaleUploads(new Date(5_000), 1)).map((s) => s.id),
          ['older'],
        );
        assert.deepEqual(await store.listStaleUploads(new Date(100), 10), []);
      }),
    );

    it(
      'unlinked blobs are unknown registry-wide and uncounted; putManifest re-checks its blobs',
      withStore(async (store) => {
        const blob = digestOf('blob');
        await store.linkBlob(REG, 'a', blob, 4);
        await store.linkBlob(REG, 'b', blob, 4);
        const m = manifest('{"uses":"blob"}');
        assert.deepEqual(await store.findBlob(REG, blob), { size: 4 });
        assert.equal((await store.registryUsage(REG)).storageBytes, 4);
        assert.equal(await store.unlinkBlob(REG, 'a', blob), true);
        assert.deepEqual(await store.findBlob(REG, blob), { size: 4 });
        assert.equal(await store.putManifest(REG, 'a', m, 'v1', [blob]), blob);
        assert.equal(await store.getManifest(REG, 'a', m.digest), undefined);
        assert.equal(await store.resolveTag(REG, 'a', 'v1'), undefined);
        assert.equal(await store.unlinkBlob(REG, 'b', blob), true);
        assert.equal(await store.findBlob(REG, blob), undefined);
        assert.equal((await store.registryUsage(REG)).storageBytes, 0);
        await store.linkBlob(REG, 'a', blob, 4);
        assert.equal(await store.putManifest(REG, 'a', m, 'v1', [blob]), undefined);
        assert.equal(await store.resolveTag(REG, 'a', 'v1'), m.digest);
        const index = manifest(`{"manifests":["${m.digest}","${digestOf('gone')}"]}`);
        assert.equal(
          await store.putManifest(REG, 'a', index, 'i', [], [m.digest, digestOf('gone')]),
          digestOf('gone'),
        );
        assert.equal(await store.getManifest(REG, 'a', index.digest), undefined);
        assert.equal(await store.putManifest(REG, 'a', index, 'i', [], [m.digest]), undefined);
      }),
    );

    it(
      'uploads: a verified digest is recorded for crash recovery; a registry lists and counts its sessions',
      withStore(async (store) => {
        await store.createUpload(session('b'));
        await store.createUpload(session('a'));
        await store.createUpload({ ...session('x'), registry: 'other' });
        assert.equal((await store.getUpload(REG, 'a'))?.committing, undefined);
        assert.equal(await store.markUploadCommitting(REG, 'a', digestOf('a')), true);
        assert.equal(await store.markUploadCommitting(REG, 'missing', digestOf('a')), false);
        assert.equal((await store.getUpload(REG, 'a'))?.committing, digestOf('a'));
        const listed = await store.listUploads(REG, 10);
        assert.deepEqual(
          listed.map((s) => s.id),
          ['a', 'b'],
        );
        assert.equal(listed[0]!.committing, digestOf('a'));
        assert.equal((await store.listUploads(REG, 1)).length, 1);
        assert.equal(await store.countUploads(REG), 2);
        assert.equal(await store.countUploads('other'), 1);
        await store.deleteUpload(REG, 'a');
        assert.equal(await store.countUploads(REG), 1);
      }),
    );

    it(
      'deleteRegistry removes the registry and everything in it, and nothing else',
      withStore(async (store) => {
        await store.createRegistry({ name: 'doomed', createdAt: new Date(), properties: {} });
        const m = manifest('{"doomed":1}', { subject: digestOf('s') });
        await store.putManifest('doomed', 'repo', m, 'v1');
        await store.linkBlob('doomed', 'repo', digestOf('b'), 1);
        await store.createUpload({ ...session('u'), registry: 'doomed' });
        await store.putManifest(REG, 'repo', m, 'v1');
        assert.equal(await store.deleteRegistry('doomed'), true);
        assert.equal(await store.deleteRegistry('doomed'), false);
        assert.equal(await store.getRegistry('doomed'), undefined);
        assert.equal(await store.repositoryExists('doomed', 'repo'), false);
        assert.equal(await store.resolveTag('doomed', 'repo', 'v1'), undefined);
        assert.equal(await store.getManifest('doomed', 'repo', m.digest), undefined);
        assert.deepEqual(await store.listReferrers('doomed', 'repo', digestOf('s')), []);
        assert.equal(await store.findBlob('doomed', digestOf('b')), undefined);
        assert.equal(await store.getUpload('doomed', 'u'), undefined);
        // A registry created again under the name starts empty.
        await store.createRegistry({ name: 'doomed', createdAt: new Date(), properties: {} });
        assert.deepEqual(await store.listRepositories('doomed', { limit: 10 }), []);
        // The other registry is untouched.
        assert.equal(await store.resolveTag(REG, 'repo', 'v1'), m.digest);
      }),
    );
  });
}
