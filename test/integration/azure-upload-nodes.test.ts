// The upload service itself spread over three "nodes": three RegistryService instances, each with its
// own AzureBlobStore client and its own in-memory hash states and busy set, sharing one metadata store
// and one Azurite container. A chunk landing on a node that did not see the previous one re-hashes the
// stored prefix; an aborted chunk leaves the session where it was and the retry on another node works.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import { OciError } from '../../src/errors/oci.js';
import { RegistryService } from '../../src/registry/service.js';
import { AzureBlobStore } from '../../src/store/azure-blob-store.js';
import { SqliteMetadataStore } from '../../src/store/sqlite-metadata-store.js';
import { azuriteContainer } from '../helpers/azurite.js';
import { digestOf, randomBlob } from '../helpers/oci.js';

const REG = 'default';
const REPO = 'spread/app';
const MiB = 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('a chunked upload through three service nodes, with an aborted chunk retried elsewhere, verifies its digest', async (t) => {
  const target = await azuriteContainer(t);
  if (!target) return;
  const dir = mkdtempSync(join(tmpdir(), 'berth-upload-nodes-'));
  const meta = new SqliteMetadataStore(join(dir, 'metadata.db'));
  t.after(async () => {
    await meta.close();
    rmSync(dir, { recursive: true, force: true });
    await BlobServiceClient.fromConnectionString(target.connectionString)
      .getContainerClient(target.container)
      .deleteIfExists();
  });
  await meta.createRegistry({ name: REG, createdAt: new Date(), properties: {} });
  const options = {
    maxManifestBytes: 4 * MiB,
    deleteEnabled: true,
    automaticContentDiscovery: true,
    uploadTtlMs: 60_000,
  };
  const nodes: RegistryService[] = [];
  for (let i = 0; i < 3; i++)
    nodes.push(new RegistryService(meta, await AzureBlobStore.fromConfig(target), options));
  const [one, two, three] = nodes as [RegistryService, RegistryService, RegistryService];

  const content = randomBlob(10 * MiB + 99);
  const a = 4 * MiB + 1;
  const b = 8 * MiB + 3;
  const upload = await one.uploads.startUpload(REG, REPO);
  const first = await one.uploads.appendChunk(REG, REPO, upload.id, Readable.from([content.subarray(0, a)]), {
    range: { start: 0, end: a - 1 },
  });
  assert.equal(first.offset, a);

  // The client hangs up halfway through its second chunk on node two.
  let sent = 0;
  const aborted = new Readable({
    read() {
      if (sent >= 3 * MiB) return void this.destroy(new Error('client went away'));
      this.push(content.subarray(a + sent, a + sent + 256 * 1024));
      sent += 256 * 1024;
    },
  });
  await assert.rejects(
    two.uploads.appendChunk(REG, REPO, upload.id, aborted, { range: { start: a, end: b - 1 } }),
  );
  assert.equal(
    (await three.uploads.getUpload(REG, REPO, upload.id)).offset,
    a,
    'nothing of the aborted chunk counts',
  );

  // The retry lands on node three, which never saw this upload: it re-hashes the first chunk.
  const second = await three.uploads.appendChunk(
    REG,
    REPO,
    upload.id,
    Readable.from([content.subarray(a, b)]),
    {
      range: { start: a, end: b - 1 },
    },
  );
  assert.equal(second.offset, b);

  // Node one still holds a hash at offset a; it must not be trusted at offset b. A wrong digest is refused.
  const digest = digestOf(content);
  const wrong = digestOf(Buffer.concat([content.subarray(0, b), randomBlob(content.length - b)]));
  await assert.rejects(
    one.uploads.completeUpload(REG, REPO, upload.id, wrong, Readable.from([content.subarray(b)]), {
      range: { start: b, end: content.length - 1 },
    }),
    (error: unknown) => error instanceof OciError && error.code === 'DIGEST_INVALID',
  );

  // The same upload again from the start, this time finished on node one with the right digest.
  const again = await two.uploads.startUpload(REG, REPO);
  await two.uploads.appendChunk(REG, REPO, again.id, Readable.from([content.subarray(0, b)]), {
    range: { start: 0, end: b - 1 },
  });
  assert.equal(
    await one.uploads.completeUpload(REG, REPO, again.id, digest, Readable.from([content.subarray(b)]), {
      range: { start: b, end: content.length - 1 },
    }),
    digest,
  );
  for (const node of nodes) {
    assert.deepEqual(await node.statBlob(REG, REPO, digest), { digest, size: content.length });
    assert.equal(digestOf(await readAll((await node.openBlob(REG, REPO, digest)).stream!)), digest);
  }
});
