import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import { StoreNotFoundError } from '../../src/store/errors.js';
import type { BlobStore } from '../../src/store/types.js';
import { REG } from './metadata-store-contract.js';
import { digestOf, randomBlob } from './oci.js';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Makes a store for one test, or undefined when the test was skipped (its server is not installed).
 */
export type BlobStoreFactory = (
  t: TestContext,
) => Promise<{ store: BlobStore; dispose(): Promise<void> } | undefined>;

/**
 * The behaviour every `BlobStore` must have. Run it against each implementation
 * (the filesystem and Azure Blob Storage on Azurite).
 */
export function blobStoreContract(name: string, factory: BlobStoreFactory): void {
  describe(`BlobStore contract: ${name}`, () => {
    const withStore = (fn: (store: BlobStore) => Promise<void>) => async (t: TestContext) => {
      const made = await factory(t);
      if (!made) return;
      const { store, dispose } = made;
      try {
        await fn(store);
      } finally {
        await dispose();
      }
    };

    /** Writes `content` as an upload in one go and commits it; returns its digest. */
    async function put(store: BlobStore, registry: string, content: Buffer): Promise<string> {
      const id = `up-${randomBlob(6).toString('hex')}`;
      await store.createUpload(registry, id);
      assert.equal(await store.writeUpload(registry, id, 0, Readable.from([content])), content.length);
      const digest = digestOf(content);
      await store.commitUpload(registry, id, digest, content.length);
      return digest;
    }

    it(
      'a missing blob: stat is undefined, open rejects with not-found',
      withStore(async (store) => {
        assert.equal(await store.stat(REG, digestOf('nothing')), undefined);
        await assert.rejects(store.open(REG, digestOf('nothing')), StoreNotFoundError);
        await store.delete(REG, digestOf('nothing'));
      }),
    );

    it(
      'chunks written in order commit to the exact blob; ranges read back',
      withStore(async (store) => {
        const content = randomBlob(3000);
        await store.createUpload(REG, 'u1');
        assert.equal(await store.writeUpload(REG, 'u1', 0, Readable.from([content.subarray(0, 1000)])), 1000);
        assert.equal(
          await store.writeUpload(
            REG,
            'u1',
            1000,
            Readable.from([content.subarray(1000, 2000), content.subarray(2000)]),
          ),
          2000,
        );
        assert.deepEqual(await readAll(await store.readUpload(REG, 'u1', 1500)), content.subarray(0, 1500));
        assert.deepEqual(await readAll(await store.readUpload(REG, 'u1', 0)), Buffer.alloc(0));
        const digest = digestOf(content);
        await store.commitUpload(REG, 'u1', digest, content.length);
        assert.deepEqual(await store.stat(REG, digest), { size: 3000 });
        assert.deepEqual(await readAll(await store.open(REG, digest)), content);
        assert.deepEqual(
          await readAll(await store.open(REG, digest, { start: 10, end: 19 })),
          content.subarray(10, 20),
        );
        assert.deepEqual(
          await readAll(await store.open(REG, digest, { start: 2999, end: 2999 })),
          content.subarray(2999),
        );
        // The upload is gone once committed.
        await assert.rejects(store.readUpload(REG, 'u1', 1), StoreNotFoundError);
      }),
    );

    it(
      'a rewrite from an earlier offset replaces what an interrupted write left, and commit cuts junk',
      withStore(async (store) => {
        const content = randomBlob(2000);
        await store.createUpload(REG, 'u');
        await store.writeUpload(REG, 'u', 0, Readable.from([content.subarray(0, 1000)]));
        // An interrupted chunk wrote 1500 bytes of junk past the accepted 1000...
        await store.writeUpload(REG, 'u', 1000, Readable.from([randomBlob(1500)]));
        // ...the retry writes the real 500 bytes at 1000, and the blob is the first 1500 bytes.
        await store.writeUpload(REG, 'u', 1000, Readable.from([content.subarray(1000, 1500)]));
        const expected = content.subarray(0, 1500);
        await store.commitUpload(REG, 'u', digestOf(expected), 1500);
        assert.deepEqual(await store.stat(REG, digestOf(expected)), { size: 1500 });
        assert.deepEqual(await readAll(await store.open(REG, digestOf(expected))), expected);
      }),
    );

    it(
      'committing over an existing blob keeps the existing bytes and removes the upload',
      withStore(async (store) => {
        const content = randomBlob(100);
        const digest = await put(store, REG, content);
        await store.createUpload(REG, 'dup');
        await store.writeUpload(REG, 'dup', 0, Readable.from([randomBlob(100)]));
        await store.commitUpload(REG, 'dup', digest, 100);
        assert.deepEqual(await readAll(await store.open(REG, digest)), content);
        await assert.rejects(store.readUpload(REG, 'dup', 1), StoreNotFoundError);
      }),
    );

    it(
      'uploads that are gone: write and commit reject with not-found, delete is quiet',
      withStore(async (store) => {
        await assert.rejects(
          store.writeUpload(REG, 'ghost', 0, Readable.from([Buffer.from('x')])),
          StoreNotFoundError,
        );
        await assert.rejects(store.readUpload(REG, 'ghost', 1), StoreNotFoundError);
        await assert.rejects(store.commitUpload(REG, 'ghost', digestOf('x'), 1), StoreNotFoundError);
        await store.deleteUpload(REG, 'ghost');
        await store.createUpload(REG, 'cancelled');
        await store.writeUpload(REG, 'cancelled', 0, Readable.from([Buffer.from('abc')]));
        await store.deleteUpload(REG, 'cancelled');
        await assert.rejects(store.commitUpload(REG, 'cancelled', digestOf('abc'), 3), StoreNotFoundError);
        assert.equal(await store.stat(REG, digestOf('abc')), undefined);
      }),
    );

    it(
      'a failing source stream rejects the write',
      withStore(async (store) => {
        await store.createUpload(REG, 'broken');
        const source = new Readable({
          read() {
            this.push(Buffer.alloc(100));
            this.destroy(new Error('client went away'));
          },
        });
        await assert.rejects(store.writeUpload(REG, 'broken', 0, source), /client went away/);
        // The upload is still usable afterwards.
        assert.equal(await store.writeUpload(REG, 'broken', 0, Readable.from([Buffer.from('ok')])), 2);
      }),
    );

    it(
      'upload files are listed per registry with their modification time',
      withStore(async (store) => {
        assert.deepEqual(await listFiles(store, 'empty'), []);
        await store.createUpload('r1', 'u1');
        await store.createUpload('r1', 'u2');
        await store.createUpload('r2', 'u3');
        const listed = await listFiles(store, 'r1');
        assert.deepEqual(listed.map((f) => f.id).sort(), ['u1', 'u2']);
        for (const file of listed) assert.ok(Date.now() - file.mtime.getTime() < 60_000);
        await store.deleteUpload('r1', 'u1');
        assert.deepEqual(
          (await listFiles(store, 'r1')).map((f) => f.id),
          ['u2'],
        );
      }),
    );

    it(
      'blobs are scoped by registry; delete and deleteRegistry remove them',
      withStore(async (store) => {
        const content = randomBlob(10);
        const digest = await put(store, 'r1', content);
        assert.equal(await store.stat('r2', digest), undefined);
        await put(store, 'r2', content);
        await store.delete('r1', digest);
        assert.equal(await store.stat('r1', digest), undefined);
        assert.deepEqual(await store.stat('r2', digest), { size: 10 });
        await store.createUpload('r2', 'pending');
        await store.deleteRegistry('r2');
        assert.equal(await store.stat('r2', digest), undefined);
        await assert.rejects(store.readUpload('r2', 'pending', 0), StoreNotFoundError);
        await store.deleteRegistry('never-existed');
      }),
    );

    it(
      'sha512 digests and an empty blob',
      withStore(async (store) => {
        const content = randomBlob(50);
        const digest = digestOf(content, 'sha512');
        await store.createUpload(REG, 's');
        await store.writeUpload(REG, 's', 0, Readable.from([content]));
        await store.commitUpload(REG, 's', digest, 50);
        assert.deepEqual(await readAll(await store.open(REG, digest)), content);
        const empty = await put(store, REG, Buffer.alloc(0));
        assert.deepEqual(await store.stat(REG, empty), { size: 0 });
        assert.deepEqual(await readAll(await store.open(REG, empty)), Buffer.alloc(0));
      }),
    );
  });
}

async function listFiles(store: BlobStore, registry: string): Promise<{ id: string; mtime: Date }[]> {
  const files = [];
  for await (const file of store.listUploadFiles(registry)) files.push(file);
  return files;
}
