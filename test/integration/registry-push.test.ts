import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  absolute,
  bytes,
  digestOf,
  expectError,
  expectRawError,
  pushBlob,
  randomBlob,
  rawRequest,
  startUpload,
  withQuery,
  v2fetch,
} from '../helpers/oci.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth();
});
after(async () => {
  await berth.stop();
});

function patch(url: string, chunk: Buffer, start?: number): Promise<Response> {
  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
  if (start !== undefined) headers['Content-Range'] = `${start}-${start + chunk.length - 1}`;
  return v2fetch(url, { method: 'PATCH', headers, body: bytes(chunk) });
}

async function blobBytes(repo: string, digest: string): Promise<Buffer | undefined> {
  const res = await v2fetch(`${berth.url}/v2/${repo}/blobs/${digest}`);
  if (res.status === 404) return void (await res.arrayBuffer());
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

/** Every committed blob file under the data directory (all registries, all algorithms). */
function committedBlobFiles(): string[] {
  const root = join(berth.dataDir, 'blobs');
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /[\\/]blobs[\\/]sha(256|512)[\\/]/.test(entry.parentPath))
    .map((entry) => entry.name);
}

test('monolithic POST ?digest= creates the blob: 201 with Location and Docker-Content-Digest', async () => {
  const content = randomBlob(300);
  const digest = digestOf(content);
  const res = await v2fetch(`${berth.url}/v2/push/mono/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: bytes(content),
  });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  const location = absolute(berth.url, res.headers.get('location'));
  const get = await v2fetch(location);
  assert.equal(get.status, 200);
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), content);
});

test('POST then PUT ?digest= with the whole body', async () => {
  const content = randomBlob(500);
  const upload = await startUpload(berth.url, 'push/post-put');
  const res = await v2fetch(withQuery(upload, 'digest', digestOf(content)), {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: bytes(content),
  });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('docker-content-digest'), digestOf(content));
  assert.deepEqual(await blobBytes('push/post-put', digestOf(content)), content);
});

test('a new upload reports 202 with Location, Range 0-0 and an upload id', async () => {
  const res = await v2fetch(`${berth.url}/v2/push/new/blobs/uploads/`, { method: 'POST' });
  assert.equal(res.status, 202);
  assert.match(res.headers.get('location') ?? '', /^\/v2\/push\/new\/blobs\/uploads\/[0-9a-f-]{36}$/);
  assert.equal(res.headers.get('range'), '0-0');
  assert.ok(res.headers.get('docker-upload-uuid'));
});

test('chunked PATCHes with Content-Range, status in between, final PUT without a body', async () => {
  const content = randomBlob(3000);
  const upload = await startUpload(berth.url, 'push/chunked');
  let location = upload;
  for (const [start, end] of [
    [0, 999],
    [1000, 1999],
    [2000, 2999],
  ] as const) {
    const res = await patch(location, content.subarray(start, end + 1), start);
    assert.equal(res.status, 202, await res.text());
    assert.equal(res.headers.get('range'), `0-${end}`);
    location = absolute(berth.url, res.headers.get('location'));
    const status = await v2fetch(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), `0-${end}`);
    assert.equal(absolute(berth.url, status.headers.get('location')), location);
  }
  const done = await v2fetch(withQuery(location, 'digest', digestOf(content)), { method: 'PUT' });
  assert.equal(done.status, 201, await done.text());
  assert.deepEqual(await blobBytes('push/chunked', digestOf(content)), content);
  // The session is gone once committed.
  await expectError(await v2fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
});

test('chunked upload finished by a PUT that carries the last chunk', async () => {
  const content = randomBlob(2500);
  const upload = await startUpload(berth.url, 'push/last-chunk');
  const first = await patch(upload, content.subarray(0, 2000), 0);
  assert.equal(first.status, 202);
  const done = await v2fetch(withQuery(upload, 'digest', digestOf(content)), {
    method: 'PUT',
    headers: { 'Content-Range': '2000-2499', 'Content-Type': 'application/octet-stream' },
    body: bytes(content.subarray(2000)),
  });
  assert.equal(done.status, 201, await done.text());
  assert.deepEqual(await blobBytes('push/last-chunk', digestOf(content)), content);
});

test('out-of-order and repeated chunks are 416 with the current Range and Location', async () => {
  const content = randomBlob(300);
  const upload = await startUpload(berth.url, 'push/order');
  assert.equal((await patch(upload, content.subarray(0, 100), 0)).status, 202);
  for (const [start, end] of [
    [200, 299], // a gap
    [0, 99], // the chunk again
    [50, 149], // overlapping
  ] as const) {
    const res = await patch(upload, content.subarray(start, end + 1), start);
    assert.equal(res.status, 416, `${start}-${end}`);
    assert.equal(res.headers.get('range'), '0-99');
    assert.equal(absolute(berth.url, res.headers.get('location')), upload);
    await res.arrayBuffer();
  }
  // The upload is intact and resumes where it was.
  assert.equal((await patch(upload, content.subarray(100), 100)).status, 202);
  const done = await v2fetch(withQuery(upload, 'digest', digestOf(content)), { method: 'PUT' });
  assert.equal(done.status, 201);
  assert.deepEqual(await blobBytes('push/order', digestOf(content)), content);
});

test('a Content-Length that disagrees with Content-Range is 416', async () => {
  const upload = await startUpload(berth.url, 'push/length');
  const res = await rawRequest(berth.url, {
    method: 'PATCH',
    path: new URL(upload).pathname,
    headers: { 'Content-Range': '0-99', 'Content-Length': 50 },
    body: randomBlob(50),
  });
  assert.equal(res.status, 416);
  assert.equal(res.headers.range, '0-0');
  const status = await v2fetch(upload);
  assert.equal(status.status, 204);
  assert.equal(status.headers.get('range'), '0-0');
});

test('a malformed Content-Range is 416 and leaves the upload untouched', async () => {
  const upload = await startUpload(berth.url, 'push/bad-range');
  const res = await v2fetch(upload, {
    method: 'PATCH',
    headers: { 'Content-Range': 'ten-twenty' },
    body: 'x',
  });
  assert.equal(res.status, 416);
  await res.arrayBuffer();
  assert.equal((await v2fetch(upload)).headers.get('range'), '0-0');
});

test('PATCH without Content-Range streams (chunked transfer encoding) and appends', async () => {
  const content = randomBlob(4096);
  const upload = await startUpload(berth.url, 'push/stream');
  const path = new URL(upload).pathname;
  const first = await rawRequest(berth.url, {
    method: 'PATCH',
    path,
    body: [content.subarray(0, 1000), content.subarray(1000, 2048)],
    chunked: true,
  });
  assert.equal(first.status, 202, first.body.toString());
  assert.equal(first.headers.range, '0-2047');
  const second = await patch(upload, content.subarray(2048));
  assert.equal(second.status, 202);
  assert.equal(second.headers.get('range'), '0-4095');
  const done = await v2fetch(withQuery(upload, 'digest', digestOf(content)), { method: 'PUT' });
  assert.equal(done.status, 201);
  assert.deepEqual(await blobBytes('push/stream', digestOf(content)), content);
});

test('DELETE cancels an upload; its status is then 404 BLOB_UPLOAD_UNKNOWN', async () => {
  const upload = await startUpload(berth.url, 'push/cancel');
  assert.equal((await patch(upload, randomBlob(10), 0)).status, 202);
  const res = await v2fetch(upload, { method: 'DELETE' });
  assert.equal(res.status, 204);
  await expectError(await v2fetch(upload), 404, 'BLOB_UPLOAD_UNKNOWN');
  await expectError(await patch(upload, randomBlob(10), 10), 404, 'BLOB_UPLOAD_UNKNOWN');
  await expectError(await v2fetch(upload, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
});

test('a wrong digest on PUT is 400 DIGEST_INVALID and nothing is committed', async () => {
  const content = randomBlob(256);
  const claimed = digestOf(randomBlob(256));
  // Sanity: committed blobs do show up where this test looks for them.
  const good = await pushBlob(berth.url, 'push/wrong', randomBlob(16));
  assert.ok(committedBlobFiles().includes(good.slice('sha256:'.length)));
  const before = committedBlobFiles().length;
  const upload = await startUpload(berth.url, 'push/wrong');
  assert.equal((await patch(upload, content, 0)).status, 202);
  await expectError(
    await v2fetch(withQuery(upload, 'digest', claimed), { method: 'PUT' }),
    400,
    'DIGEST_INVALID',
  );
  for (const digest of [claimed, digestOf(content)]) {
    const head = await v2fetch(`${berth.url}/v2/push/wrong/blobs/${digest}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
  }
  assert.equal(committedBlobFiles().length, before);
  assert.ok(!committedBlobFiles().includes(claimed.slice('sha256:'.length)));

  const mono = await v2fetch(`${berth.url}/v2/push/wrong/blobs/uploads/?digest=${claimed}`, {
    method: 'POST',
    body: bytes(content),
  });
  await expectError(mono, 400, 'DIGEST_INVALID');
  assert.equal(
    (await v2fetch(`${berth.url}/v2/push/wrong/blobs/${claimed}`, { method: 'HEAD' })).status,
    404,
  );
  assert.equal(committedBlobFiles().length, before);
});

test('sha512 digests work for monolithic and chunked uploads', async () => {
  const content = randomBlob(777);
  const digest = digestOf(content, 'sha512');
  const mono = await v2fetch(`${berth.url}/v2/push/sha512/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: bytes(content),
  });
  assert.equal(mono.status, 201, await mono.text());
  assert.equal(mono.headers.get('docker-content-digest'), digest);
  assert.deepEqual(await blobBytes('push/sha512', digest), content);

  const other = randomBlob(900);
  const upload = await startUpload(berth.url, 'push/sha512');
  assert.equal((await patch(upload, other.subarray(0, 400), 0)).status, 202);
  assert.equal((await patch(upload, other.subarray(400), 400)).status, 202);
  const done = await v2fetch(withQuery(upload, 'digest', digestOf(other, 'sha512')), { method: 'PUT' });
  assert.equal(done.status, 201);
  assert.deepEqual(await blobBytes('push/sha512', digestOf(other, 'sha512')), other);
});

test('a PUT without a digest is 400 and the upload remains', async () => {
  const upload = await startUpload(berth.url, 'push/no-digest');
  assert.equal((await patch(upload, randomBlob(10), 0)).status, 202);
  const res = await v2fetch(upload, { method: 'PUT' });
  assert.equal(res.status, 400);
  await expectError(res, 400, 'DIGEST_INVALID');
  assert.equal((await v2fetch(upload)).headers.get('range'), '0-9');
});

test('unknown or malformed upload ids are 404 BLOB_UPLOAD_UNKNOWN', async () => {
  const base = `${berth.url}/v2/push/ids/blobs/uploads`;
  await startUpload(berth.url, 'push/ids');
  const ids = [
    'not-a-uuid',
    '00000000-0000-0000-0000-000000000000',
    'ABCDEF01-2345-6789-ABCD-EF0123456789',
    'x'.repeat(300),
  ];
  for (const id of ids) {
    await expectError(await v2fetch(`${base}/${encodeURIComponent(id)}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(
      await patch(`${base}/${encodeURIComponent(id)}`, randomBlob(4)),
      404,
      'BLOB_UPLOAD_UNKNOWN',
    );
    const put = await v2fetch(`${base}/${encodeURIComponent(id)}?digest=${digestOf('x')}`, {
      method: 'PUT',
      body: 'x',
    });
    await expectError(put, 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(
      await v2fetch(`${base}/${encodeURIComponent(id)}`, { method: 'DELETE' }),
      404,
      'BLOB_UPLOAD_UNKNOWN',
    );
  }
});

test("an upload of one repository cannot be used through another repository's URL", async () => {
  const content = randomBlob(20);
  const upload = await startUpload(berth.url, 'push/repo-a');
  const foreign = upload.replace('/push/repo-a/', '/push/repo-b/');
  assert.notEqual(foreign, upload);
  await expectError(await v2fetch(foreign), 404, 'BLOB_UPLOAD_UNKNOWN');
  await expectError(await patch(foreign, content, 0), 404, 'BLOB_UPLOAD_UNKNOWN');
  await expectError(
    await v2fetch(withQuery(foreign, 'digest', digestOf(content)), { method: 'PUT', body: bytes(content) }),
    404,
    'BLOB_UPLOAD_UNKNOWN',
  );
  await expectError(await v2fetch(foreign, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
  // Still usable where it belongs.
  assert.equal((await v2fetch(upload)).status, 204);
});

test('two clients pushing the same blob at once both get 201; pushing it again is 201 too', async () => {
  const content = randomBlob(200_000);
  const digest = digestOf(content);
  const push = () =>
    v2fetch(`${berth.url}/v2/push/same/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: bytes(content),
    });
  const results = await Promise.all([push(), push(), push(), push()]);
  for (const res of results) {
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('docker-content-digest'), digest);
  }
  assert.deepEqual(await blobBytes('push/same', digest), content);
  assert.equal(await pushBlob(berth.url, 'push/same', content), digest);
  // The same content pushed to a second repository is served there too.
  assert.equal(await pushBlob(berth.url, 'push/same-too', content), digest);
  assert.deepEqual(await blobBytes('push/same-too', digest), content);
});

test('two concurrent PATCHes to one upload: exactly one chunk is accepted', async () => {
  const upload = await startUpload(berth.url, 'push/race');
  const chunk = randomBlob(64 * 1024);
  const results = await Promise.all([patch(upload, chunk, 0), patch(upload, chunk, 0)]);
  const statuses = results.map((r) => r.status).sort();
  assert.deepEqual(statuses, [202, 416]);
  const status = await v2fetch(upload);
  assert.equal(status.headers.get('range'), `0-${chunk.length - 1}`);
  const done = await v2fetch(withQuery(upload, 'digest', digestOf(chunk)), { method: 'PUT' });
  assert.equal(done.status, 201);
});

test('raw: an upload status answers 204 with no body', async () => {
  const upload = await startUpload(berth.url, 'push/raw-status');
  const res = await rawRequest(berth.url, { path: new URL(upload).pathname });
  assert.equal(res.status, 204);
  assert.equal(res.body.length, 0);
  assert.equal(res.headers.range, '0-0');
  const bogus = await rawRequest(berth.url, { path: '/v2/push/raw-status/blobs/uploads/zzz' });
  expectRawError(bogus, 404, 'BLOB_UPLOAD_UNKNOWN');
});
