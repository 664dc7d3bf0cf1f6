// Blob GETs served straight from the stored file (src/http/v2/send-file.ts): pooled buffers shared by
// concurrent transfers, ranges across buffer boundaries, and clients or files that end early.

import assert from 'node:assert/strict';
import { readdirSync, readlinkSync, truncateSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { digestOf, pushBlob, randomBlob, v2fetch } from '../helpers/oci.js';
import { ADMIN_AUTH, startTestBerth, type TestBerth } from '../helpers/server.js';

const MiB = 1024 * 1024;

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth();
});
after(async () => {
  await berth.stop();
});

function blobFile(digest: string): string {
  const encoded = digest.slice('sha256:'.length);
  return join(berth.dataDir, 'blobs', 'default', 'blobs', 'sha256', encoded.slice(0, 2), encoded);
}

/** Whether this process (the server runs in it) still has `path` open. */
function isOpen(path: string): boolean {
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) return true;
    } catch {
      // closed while listing
    }
  }
  return false;
}

async function eventuallyClosed(path: string): Promise<void> {
  for (let attempt = 0; attempt < 50 && isOpen(path); attempt++) await sleep(100);
  assert.equal(isOpen(path), false, `${path} is still open`);
}

test('48 simultaneous GETs of one blob (more than the pooled buffers) each get every byte', async () => {
  const content = randomBlob(3 * MiB + 12345);
  const digest = await pushBlob(berth.url, 'send/concurrent', content);
  const bodies = await Promise.all(
    Array.from({ length: 48 }, async () => {
      const res = await v2fetch(`${berth.url}/v2/send/concurrent/blobs/${digest}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-length'), String(content.length));
      return Buffer.from(await res.arrayBuffer());
    }),
  );
  for (const body of bodies) assert.equal(digestOf(body), digest);
  await eventuallyClosed(blobFile(digest));
});

test('ranges across the 1 MiB read boundaries return exactly the bytes asked for', async () => {
  const content = randomBlob(5 * MiB + 7);
  const digest = await pushBlob(berth.url, 'send/ranges', content);
  const cases: [string, number, number][] = [
    ['bytes=0-0', 0, 0],
    [`bytes=${MiB - 1}-${MiB}`, MiB - 1, MiB],
    [`bytes=${MiB - 3}-${3 * MiB + 5}`, MiB - 3, 3 * MiB + 5],
    [`bytes=${4 * MiB}-`, 4 * MiB, content.length - 1],
    ['bytes=-1', content.length - 1, content.length - 1],
  ];
  for (const [range, start, end] of cases) {
    const res = await v2fetch(`${berth.url}/v2/send/ranges/blobs/${digest}`, { headers: { Range: range } });
    assert.equal(res.status, 206, range);
    assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${content.length}`, range);
    assert.equal(res.headers.get('content-length'), String(end - start + 1), range);
    assert.equal(res.headers.get('docker-content-digest'), digest, range);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), content.subarray(start, end + 1), range);
  }
});

test('a client that hangs up mid-blob leaves no open file behind and the next GET is whole', async () => {
  const content = randomBlob(24 * MiB);
  const digest = await pushBlob(berth.url, 'send/abort', content);
  const url = new URL(`${berth.url}/v2/send/abort/blobs/${digest}`);
  const received = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(url, { headers: { Authorization: ADMIN_AUTH }, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        // Well before the end (the socket buffers hold far less than 24 MiB): hang up.
        if (bytes >= MiB) {
          req.destroy();
          resolve(bytes);
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
    req.end();
  });
  assert.ok(received < content.length);
  await eventuallyClosed(blobFile(digest));
  const again = await v2fetch(url);
  assert.equal(again.status, 200);
  assert.equal(digestOf(Buffer.from(await again.arrayBuffer())), digest);
});

test('a stored file shorter than its recorded size cuts the connection instead of hanging', async () => {
  const content = randomBlob(3 * MiB);
  const digest = await pushBlob(berth.url, 'send/short', content);
  truncateSync(blobFile(digest), 2 * MiB);
  const outcome = await new Promise<{ status: number; bytes: number; complete: boolean }>(
    (resolve, reject) => {
      const req = httpRequest(
        `${berth.url}/v2/send/short/blobs/${digest}`,
        { headers: { Authorization: ADMIN_AUTH }, agent: false },
        (res) => {
          let bytes = 0;
          res.on('data', (chunk: Buffer) => (bytes += chunk.length));
          const done = () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete });
          res.on('end', done);
          res.on('error', done);
          res.on('close', done);
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('the response hung')));
      req.on('error', reject);
      req.end();
    },
  );
  assert.equal(outcome.status, 200);
  assert.equal(outcome.complete, false);
  assert.ok(outcome.bytes <= 2 * MiB, `${outcome.bytes} bytes`);
  await eventuallyClosed(blobFile(digest));
  const base = await v2fetch(`${berth.url}/v2/`);
  assert.equal(base.status, 200);
});
