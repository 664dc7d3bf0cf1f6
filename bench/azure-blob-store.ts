// Blob push and pull MiB/s through the BlobStore interface, AzureBlobStore on Azurite beside FsBlobStore,
// for one 64 MiB blob (best and median of a few rounds). Not part of `npm run bench`; run it alone:
//   node --import tsx bench/azure-blob-store.ts [MiB] [rounds]
// With BERTH_AZURE_STORAGE_CONNECTION_STRING set it measures that account instead of a local Azurite.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BlobServiceClient } from '@azure/storage-blob';
import { AzureBlobStore } from '../src/store/azure-blob-store.js';
import { FsBlobStore } from '../src/store/fs-blob-store.js';
import type { BlobStore } from '../src/store/types.js';
import { azuriteConnectionString, azuriteServer } from '../test/helpers/azurite.js';

const MiB = 1024 * 1024;
const size = Number(process.argv[2] ?? 64) * MiB;
const rounds = Number(process.argv[3] ?? 3);

/** The blob as a stream of 64 KiB pieces, as a socket would deliver it. */
function body(content: Buffer): Readable {
  let at = 0;
  return new Readable({
    read() {
      this.push(at < content.length ? content.subarray(at, (at += 64 * 1024)) : null);
    },
  });
}

async function measure(name: string, store: BlobStore): Promise<void> {
  const pushes: number[] = [];
  const pulls: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const content = randomBytes(size);
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    const id = `bench-${round}-${Date.now()}`;
    let started = performance.now();
    await store.createUpload('bench', id);
    await store.writeUpload('bench', id, 0, body(content));
    await store.commitUpload('bench', id, digest, size);
    pushes.push(size / MiB / ((performance.now() - started) / 1000));
    started = performance.now();
    let read = 0;
    for await (const chunk of await store.open('bench', digest)) read += (chunk as Buffer).length;
    pulls.push(size / MiB / ((performance.now() - started) / 1000));
    if (read !== size) throw new Error(`read ${read} of ${size} bytes`);
    await store.delete('bench', digest);
  }
  const report = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return `best ${sorted[sorted.length - 1]!.toFixed(0)} median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} MiB/s`;
  };
  console.log(`${name}: ${size / MiB} MiB push ${report(pushes)}; pull ${report(pulls)}`);
}

const dir = mkdtempSync(join(tmpdir(), 'berth-bench-blobs-'));
try {
  let connectionString = process.env.BERTH_AZURE_STORAGE_CONNECTION_STRING;
  if (!connectionString) {
    const azurite = await azuriteServer();
    if (!azurite) throw new Error('azurite is not installed (npm install)');
    connectionString = azuriteConnectionString(azurite.port);
  }
  await measure('FsBlobStore', new FsBlobStore(dir));
  const container = `bench-${process.pid}`;
  try {
    await measure('AzureBlobStore', await AzureBlobStore.fromConfig({ connectionString, container }));
  } finally {
    await BlobServiceClient.fromConnectionString(connectionString)
      .getContainerClient(container)
      .deleteIfExists();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
