import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { it, type TestContext } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import { AzureBlobStore } from '../../src/store/azure-blob-store.js';
import { StoreConflictError } from '../../src/store/errors.js';
import { azuriteContainer } from '../helpers/azurite.js';
import { digestOf, randomBlob } from '../helpers/oci.js';

// Several AzureBlobStore instances over one container stand for several Berth nodes: each has its own
// HTTP client and nothing in memory shared with the others, only the container.

const REG = 'nodes';
const MiB = 1024 * 1024;

/** `count` independent stores ("nodes") on one fresh container, or undefined when skipped. */
async function nodes(t: TestContext, count: number): Promise<AzureBlobStore[] | undefined> {
  const target = await azuriteContainer(t);
  if (!target) return undefined;
  t.after(() =>
    BlobServiceClient.fromConnectionString(target.connectionString)
      .getContainerClient(target.container)
      .deleteIfExists(),
  );
  const stores = [];
  for (let i = 0; i < count; i++) stores.push(await AzureBlobStore.fromConfig(target));
  return stores;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** A body that delivers `bytes` in 64 KiB pieces and then fails, as a client that hangs up mid-chunk. */
function abortedBody(bytes: Buffer): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes.length) return void this.destroy(new Error('client aborted'));
      this.push(bytes.subarray(sent, sent + 64 * 1024));
      sent += 64 * 1024;
    },
  });
}

it('a chunked upload started on one node, continued on a second, finished on a third', async (t) => {
  const stores = await nodes(t, 3);
  if (!stores) return;
  const [one, two, three] = stores as [AzureBlobStore, AzureBlobStore, AzureBlobStore];
  // Chunks larger than a block and not block-aligned, so blocks of several sizes meet.
  const content = randomBlob(11 * MiB + 12_345);
  const cut = 5 * MiB + 7;
  await one.createUpload(REG, 'spread');
  assert.equal(await one.writeUpload(REG, 'spread', 0, Readable.from([content.subarray(0, cut)])), cut);
  assert.equal(
    await two.writeUpload(REG, 'spread', cut, Readable.from([content.subarray(cut, 2 * cut)])),
    cut,
  );
  // The third node has no hash state: it re-hashes the committed prefix, as the service does.
  assert.equal(
    await sha256Of(await three.readUpload(REG, 'spread', 2 * cut)),
    digestOf(content.subarray(0, 2 * cut)),
  );
  const rest = content.subarray(2 * cut);
  assert.equal(await three.writeUpload(REG, 'spread', 2 * cut, Readable.from([rest])), rest.length);
  const digest = digestOf(content);
  await three.commitUpload(REG, 'spread', digest, content.length);
  for (const store of stores) {
    assert.deepEqual(await store.stat(REG, digest), { size: content.length });
    assert.equal(await sha256Of(await store.open(REG, digest)), digest);
  }
  assert.deepEqual(
    await readAll(await one.open(REG, digest, { start: cut - 3, end: cut + 3 })),
    content.subarray(cut - 3, cut + 4),
  );
});

it('a chunk aborted mid-stream on one node is retried at the same offset on another; the digest verifies', async (t) => {
  const stores = await nodes(t, 3);
  if (!stores) return;
  const [one, two, three] = stores as [AzureBlobStore, AzureBlobStore, AzureBlobStore];
  const content = randomBlob(14 * MiB);
  const first = 3 * MiB;
  await one.createUpload(REG, 'retry');
  await one.writeUpload(REG, 'retry', 0, Readable.from([content.subarray(0, first)]));
  // More than two blocks reach the store before the client goes away: staged, never committed.
  await assert.rejects(
    two.writeUpload(REG, 'retry', first, abortedBody(randomBlob(9 * MiB))),
    /client aborted/,
  );
  assert.equal(
    await sha256Of(await three.readUpload(REG, 'retry', first)),
    digestOf(content.subarray(0, first)),
  );
  const rest = content.subarray(first);
  assert.equal(await three.writeUpload(REG, 'retry', first, Readable.from([rest])), rest.length);
  const digest = digestOf(content);
  assert.equal(await sha256Of(await one.readUpload(REG, 'retry', content.length)), digest);
  await one.commitUpload(REG, 'retry', digest, content.length);
  assert.equal(await sha256Of(await two.open(REG, digest)), digest);
});

it('two nodes committing the same digest at once: both succeed, one intact blob, no uploads left', async (t) => {
  const stores = await nodes(t, 2);
  if (!stores) return;
  const [one, two] = stores as [AzureBlobStore, AzureBlobStore];
  const content = randomBlob(6 * MiB + 1);
  const digest = digestOf(content);
  for (const [store, id] of [
    [one, 'a'],
    [two, 'b'],
  ] as const) {
    await store.createUpload(REG, id);
    await store.writeUpload(REG, id, 0, Readable.from([content]));
  }
  await Promise.all([
    one.commitUpload(REG, 'a', digest, content.length),
    two.commitUpload(REG, 'b', digest, content.length),
  ]);
  assert.deepEqual(await one.stat(REG, digest), { size: content.length });
  assert.deepEqual(await readAll(await two.open(REG, digest)), content);
  const left = [];
  for await (const file of one.listUploadFiles(REG)) left.push(file.id);
  assert.deepEqual(left, []);
});

it('stat and open while another node commits never see a partial blob', async (t) => {
  const stores = await nodes(t, 2);
  if (!stores) return;
  const [writer, reader] = stores as [AzureBlobStore, AzureBlobStore];
  const content = randomBlob(24 * MiB);
  const digest = digestOf(content);
  await writer.createUpload(REG, 'big');
  await writer.writeUpload(REG, 'big', 0, Readable.from([content]));
  let done = false;
  const commit = writer.commitUpload(REG, 'big', digest, content.length).finally(() => {
    done = true;
  });
  const seen = new Set<string>();
  // Bounded: the commit of 24 MiB on Azurite takes well under the 2,000 looks allowed here.
  for (let look = 0; look < 2000 && !done; look++) {
    const stat = await reader.stat(REG, digest);
    if (!stat) {
      seen.add('absent');
      continue;
    }
    assert.equal(stat.size, content.length);
    assert.equal(await sha256Of(await reader.open(REG, digest)), digest);
    seen.add('complete');
  }
  await commit;
  assert.deepEqual(await reader.stat(REG, digest), { size: content.length });
  assert.ok(seen.size > 0, 'the reader looked at least once while the commit ran');
});

it('two nodes writing the same offset at once: exactly one wins and the upload holds its bytes', async (t) => {
  const stores = await nodes(t, 2);
  if (!stores) return;
  const [one, two] = stores as [AzureBlobStore, AzureBlobStore];
  await one.createUpload(REG, 'race');
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let started = 0;
  let writes: Promise<number>[] = [];
  const bothStarted = new Promise<void>((resolve) => {
    // Each body is read only after its write looked at the upload: both then hold the same version.
    const body = (bytes: Buffer) =>
      Readable.from(
        (async function* () {
          if (++started === 2) resolve();
          await gate;
          yield bytes;
        })(),
      );
    writes = [
      one.writeUpload(REG, 'race', 0, body(Buffer.from('from node one'))),
      two.writeUpload(REG, 'race', 0, body(Buffer.from('from node two'))),
    ];
  });
  await bothStarted;
  release();
  const results = await Promise.allSettled(writes);
  const won = results.filter((r) => r.status === 'fulfilled');
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(won.length, 1);
  assert.equal(lost.length, 1);
  assert.ok(lost[0]!.reason instanceof StoreConflictError, String(lost[0]!.reason));
  const winner = results[0]!.status === 'fulfilled' ? 'from node one' : 'from node two';
  assert.equal((await readAll(await two.readUpload(REG, 'race', 13))).toString(), winner);
});

it('a node whose view of an upload was rewritten by another node is refused until it re-reads', async (t) => {
  const stores = await nodes(t, 2);
  if (!stores) return;
  const [one, two] = stores as [AzureBlobStore, AzureBlobStore];
  const first = randomBlob(1000);
  const second = randomBlob(1000);
  await one.createUpload(REG, 'view');
  await one.writeUpload(REG, 'view', 0, Readable.from([first]));
  // Node two rewrites the same offset (it won the bytes of a race whose session node one won).
  await two.writeUpload(REG, 'view', 0, Readable.from([second]));
  // Node one's running hash describes `first`: neither its next chunk nor its commit may go ahead...
  await assert.rejects(
    one.writeUpload(REG, 'view', 1000, Readable.from([randomBlob(10)])),
    StoreConflictError,
  );
  await one.writeUpload(REG, 'view', 0, Readable.from([first]));
  await two.writeUpload(REG, 'view', 0, Readable.from([second]));
  await assert.rejects(one.commitUpload(REG, 'view', digestOf(first), 1000), StoreConflictError);
  assert.equal(await one.stat(REG, digestOf(first)), undefined, 'nothing was committed under the stale hash');
  // ...until it re-reads (re-hashes) the stored prefix, which it then commits under its true digest.
  assert.equal(await sha256Of(await one.readUpload(REG, 'view', 1000)), digestOf(second));
  await one.commitUpload(REG, 'view', digestOf(second), 1000);
  assert.deepEqual(await readAll(await two.open(REG, digestOf(second))), second);
});
