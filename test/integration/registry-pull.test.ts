import { rmSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  MT,
  digestOf,
  expectError,
  indexManifest,
  pushBlob,
  pushImage,
  pushManifest,
  randomBlob,
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

test('GET and HEAD /v2/ answer 200 with the API version header', async () => {
  const get = await v2fetch(`${berth.url}/v2/`);
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('docker-distribution-api-version'), 'registry/2.0');
  assert.deepEqual(await get.json(), {});
  const head = await v2fetch(`${berth.url}/v2/`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  const bare = await v2fetch(`${berth.url}/v2`);
  assert.equal(bare.status, 200);
});

test('GET a manifest by tag and by digest returns the exact bytes with type, digest and length', async () => {
  const image = await pushImage(berth.url, 'pull/manifest', 'v1');
  for (const reference of ['v1', image.digest]) {
    const res = await v2fetch(`${berth.url}/v2/pull/manifest/manifests/${reference}`, {
      headers: { Accept: MT.ociManifest },
    });
    assert.equal(res.status, 200, reference);
    assert.equal(res.headers.get('content-type'), MT.ociManifest);
    assert.equal(res.headers.get('docker-content-digest'), image.digest);
    assert.equal(res.headers.get('content-length'), String(image.bytes.length));
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.bytes);
  }
});

test('HEAD a manifest gives the same headers and no body', async () => {
  const image = await pushImage(berth.url, 'pull/head', 'latest');
  for (const reference of ['latest', image.digest]) {
    const res = await v2fetch(`${berth.url}/v2/pull/head/manifests/${reference}`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), MT.ociManifest);
    assert.equal(res.headers.get('docker-content-digest'), image.digest);
    assert.equal(res.headers.get('content-length'), String(image.bytes.length));
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  }
  const missing = await v2fetch(`${berth.url}/v2/pull/head/manifests/nope`, { method: 'HEAD' });
  assert.equal(missing.status, 404);
  assert.equal((await missing.arrayBuffer()).byteLength, 0);
});

test('GET an unknown tag or digest is 404 MANIFEST_UNKNOWN; an unknown repository 404 too', async () => {
  await pushImage(berth.url, 'pull/unknown', 'v1');
  await expectError(await v2fetch(`${berth.url}/v2/pull/unknown/manifests/v2`), 404, 'MANIFEST_UNKNOWN');
  await expectError(
    await v2fetch(`${berth.url}/v2/pull/unknown/manifests/${digestOf(randomBlob())}`),
    404,
    'MANIFEST_UNKNOWN',
  );
  const res = await v2fetch(`${berth.url}/v2/pull/never-pushed/manifests/v1`);
  assert.equal(res.status, 404);
  const body = (await res.json()) as { errors: { code: string }[] };
  assert.ok(['NAME_UNKNOWN', 'MANIFEST_UNKNOWN'].includes(body.errors[0]!.code));
});

test('Accept negotiation: an OCI index is not served to a client that only accepts Docker types', async () => {
  const child = await pushImage(berth.url, 'pull/accept', undefined);
  const index = await pushManifest(
    berth.url,
    'pull/accept',
    'multi',
    indexManifest([child.descriptor]),
    MT.ociIndex,
  );
  const url = `${berth.url}/v2/pull/accept/manifests/multi`;
  await expectError(
    await v2fetch(url, { headers: { Accept: `${MT.dockerManifest}, ${MT.dockerList}` } }),
    404,
    'MANIFEST_UNKNOWN',
  );
  const head = await v2fetch(url, { method: 'HEAD', headers: { Accept: MT.dockerList } });
  assert.equal(head.status, 404);

  for (const accept of [
    undefined,
    '*/*',
    `${MT.dockerList}, */*`,
    `${MT.ociIndex};q=0.9`,
    `${MT.dockerList},${MT.ociIndex}`,
  ]) {
    const res = await v2fetch(url, accept === undefined ? {} : { headers: { Accept: accept } });
    assert.equal(res.status, 200, `Accept: ${accept}`);
    assert.equal(res.headers.get('content-type'), MT.ociIndex);
    assert.equal(res.headers.get('docker-content-digest'), index.digest);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), index.bytes);
  }
});

test('GET and HEAD a blob return its bytes, length and digest', async () => {
  const content = randomBlob(1000);
  const digest = await pushBlob(berth.url, 'pull/blob', content);
  const get = await v2fetch(`${berth.url}/v2/pull/blob/blobs/${digest}`);
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('docker-content-digest'), digest);
  assert.equal(get.headers.get('content-length'), '1000');
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), content);

  const head = await v2fetch(`${berth.url}/v2/pull/blob/blobs/${digest}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), '1000');
  assert.equal(head.headers.get('docker-content-digest'), digest);
  assert.equal((await head.arrayBuffer()).byteLength, 0);

  await expectError(
    await v2fetch(`${berth.url}/v2/pull/blob/blobs/${digestOf(randomBlob())}`),
    404,
    'BLOB_UNKNOWN',
  );
  const headMissing = await v2fetch(`${berth.url}/v2/pull/blob/blobs/${digestOf(randomBlob())}`, {
    method: 'HEAD',
  });
  assert.equal(headMissing.status, 404);
});

test('a blob is only visible in the repository it was pushed to', async () => {
  const digest = await pushBlob(berth.url, 'pull/owner', randomBlob(10));
  await pushBlob(berth.url, 'pull/other', randomBlob(10));
  const res = await v2fetch(`${berth.url}/v2/pull/other/blobs/${digest}`);
  assert.equal(res.status, 404);
});

test('an empty blob can be pushed and pulled', async () => {
  const digest = await pushBlob(berth.url, 'pull/empty', Buffer.alloc(0));
  assert.equal(digest, 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  const res = await v2fetch(`${berth.url}/v2/pull/empty/blobs/${digest}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-length'), '0');
  assert.equal((await res.arrayBuffer()).byteLength, 0);
});

test('Range requests on blobs: first bytes, open end, suffix, clamped end', async () => {
  const content = randomBlob(100);
  const digest = await pushBlob(berth.url, 'pull/range', content);
  const url = `${berth.url}/v2/pull/range/blobs/${digest}`;
  const cases: [string, number, number][] = [
    ['bytes=0-9', 0, 9],
    ['bytes=5-', 5, 99],
    ['bytes=-5', 95, 99],
    ['bytes=90-1000', 90, 99],
    ['bytes=99-99', 99, 99],
    ['bytes=-500', 0, 99],
  ];
  for (const [range, start, end] of cases) {
    const res = await v2fetch(url, { headers: { Range: range } });
    assert.equal(res.status, 206, range);
    assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/100`, range);
    assert.equal(res.headers.get('content-length'), String(end - start + 1), range);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), content.subarray(start, end + 1), range);
  }
  const head = await v2fetch(url, { method: 'HEAD', headers: { Range: 'bytes=0-9' } });
  assert.equal(head.status, 206);
  assert.equal(head.headers.get('content-length'), '10');
});

test('an unsatisfiable Range is 416 with Content-Range bytes */size', async () => {
  const digest = await pushBlob(berth.url, 'pull/range416', randomBlob(50));
  for (const range of ['bytes=50-', 'bytes=100-200', 'bytes=10-5']) {
    const res = await v2fetch(`${berth.url}/v2/pull/range416/blobs/${digest}`, { headers: { Range: range } });
    assert.equal(res.status, 416, range);
    assert.equal(res.headers.get('content-range'), 'bytes */50', range);
    await res.arrayBuffer();
  }
});

test('GET a blob by a manifest digest returns the manifest bytes', async () => {
  const image = await pushImage(berth.url, 'pull/manifest-blob', 'v1');
  const res = await v2fetch(`${berth.url}/v2/pull/manifest-blob/blobs/${image.digest}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), image.digest);
  assert.equal(res.headers.get('content-length'), String(image.bytes.length));
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.bytes);
  const ranged = await v2fetch(`${berth.url}/v2/pull/manifest-blob/blobs/${image.digest}`, {
    headers: { Range: 'bytes=0-4' },
  });
  assert.equal(ranged.status, 206);
  assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), image.bytes.subarray(0, 5));
});

test('a large blob streams back intact', async () => {
  const content = randomBlob(3 * 1024 * 1024 + 17);
  const digest = await pushBlob(berth.url, 'pull/large', content);
  const res = await v2fetch(`${berth.url}/v2/pull/large/blobs/${digest}`);
  assert.equal(res.status, 200);
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(body.length, content.length);
  assert.equal(digestOf(body), digest);
  const tail = await v2fetch(`${berth.url}/v2/pull/large/blobs/${digest}`, {
    headers: { Range: 'bytes=-17' },
  });
  assert.deepEqual(Buffer.from(await tail.arrayBuffer()), content.subarray(content.length - 17));
});

test('a blob whose bytes vanished from storage is a 404 without caching headers', async () => {
  const digest = await pushBlob(berth.url, 'pull/vanished', randomBlob(100));
  const encoded = digest.slice('sha256:'.length);
  rmSync(join(berth.dataDir, 'blobs', 'default', 'blobs', 'sha256', encoded.slice(0, 2), encoded));
  const res = await v2fetch(`${berth.url}/v2/pull/vanished/blobs/${digest}`);
  await expectError(res, 404, 'BLOB_UNKNOWN');
  assert.equal(res.headers.get('cache-control'), null);
  assert.equal(res.headers.get('etag'), null);
  assert.equal(res.headers.get('docker-content-digest'), null);
});
