import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { absolute, digestOf, expectError, pushBlob, randomBlob, v2fetch } from '../helpers/oci.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let noDiscovery: TestBerth;
before(async () => {
  berth = await startTestBerth();
  noDiscovery = await startTestBerth({ registry: { automaticContentDiscovery: false } });
});
after(async () => {
  await berth.stop();
  await noDiscovery.stop();
});

function mount(base: string, repo: string, digest: string, from?: string): Promise<Response> {
  const query = new URLSearchParams({ mount: digest, ...(from !== undefined ? { from } : {}) });
  return v2fetch(`${base}/v2/${repo}/blobs/uploads/?${query}`, { method: 'POST' });
}

test('mount from a repository that has the blob: 201, and the blob is readable in the target', async () => {
  const content = randomBlob(400);
  const digest = await pushBlob(berth.url, 'mount/source', content);
  assert.equal(
    (await v2fetch(`${berth.url}/v2/mount/target/blobs/${digest}`, { method: 'HEAD' })).status,
    404,
  );

  const res = await mount(berth.url, 'mount/target', digest, 'mount/source');
  assert.equal(res.status, 201, await res.text());
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.equal(
    absolute(berth.url, res.headers.get('location')),
    `${berth.url}/v2/mount/target/blobs/${digest}`,
  );

  const get = await v2fetch(`${berth.url}/v2/mount/target/blobs/${digest}`);
  assert.equal(get.status, 200);
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), content);

  // Mounting again is idempotent.
  assert.equal((await mount(berth.url, 'mount/target', digest, 'mount/source')).status, 201);
});

test('mount from a repository that lacks the blob falls back to a 202 upload session', async () => {
  const digest = await pushBlob(berth.url, 'mount/has', randomBlob(10));
  await pushBlob(berth.url, 'mount/lacks', randomBlob(10));
  const res = await mount(berth.url, 'mount/target2', digest, 'mount/lacks');
  assert.equal(res.status, 202);
  const location = absolute(berth.url, res.headers.get('location'));
  assert.match(location, /\/v2\/mount\/target2\/blobs\/uploads\/[0-9a-f-]{36}$/);
  assert.equal((await v2fetch(location)).status, 204);
  assert.equal(
    (await v2fetch(`${berth.url}/v2/mount/target2/blobs/${digest}`, { method: 'HEAD' })).status,
    404,
  );

  // Same for a source repository that does not exist at all, and an unknown digest.
  assert.equal((await mount(berth.url, 'mount/target2', digest, 'mount/no-such-repo')).status, 202);
  assert.equal((await mount(berth.url, 'mount/target2', digestOf(randomBlob()), 'mount/has')).status, 202);
});

test('mount without from: 201 with automatic content discovery on', async () => {
  const content = randomBlob(50);
  const digest = await pushBlob(berth.url, 'mount/anywhere', content);
  const res = await mount(berth.url, 'mount/auto', digest);
  assert.equal(res.status, 201, await res.text());
  assert.equal(res.headers.get('docker-content-digest'), digest);
  const get = await v2fetch(`${berth.url}/v2/mount/auto/blobs/${digest}`);
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), content);
  // An unknown digest still falls back to an upload.
  assert.equal((await mount(berth.url, 'mount/auto', digestOf(randomBlob()))).status, 202);
});

test('mount without from: 202 when automatic content discovery is off', async () => {
  const digest = await pushBlob(noDiscovery.url, 'mount/anywhere', randomBlob(50));
  const res = await mount(noDiscovery.url, 'mount/auto', digest);
  assert.equal(res.status, 202);
  assert.equal(
    (await v2fetch(`${noDiscovery.url}/v2/mount/auto/blobs/${digest}`, { method: 'HEAD' })).status,
    404,
  );
  // With `from` it still mounts.
  assert.equal((await mount(noDiscovery.url, 'mount/auto', digest, 'mount/anywhere')).status, 201);
});

test('mount with an invalid digest is 400 DIGEST_INVALID; with an invalid from, 400 NAME_INVALID', async () => {
  const digest = await pushBlob(berth.url, 'mount/valid', randomBlob(10));
  for (const bad of ['sha256:abc', 'md5:d41d8cd98f00b204e9800998ecf8427e', digest.toUpperCase(), '']) {
    await expectError(await mount(berth.url, 'mount/target3', bad, 'mount/valid'), 400, 'DIGEST_INVALID');
  }
  for (const from of ['Mount/Valid', 'mount//valid', 'mount/valid-', '../etc']) {
    await expectError(await mount(berth.url, 'mount/target3', digest, from), 400, 'NAME_INVALID');
  }
});

test('a blob mounted into a repository survives deleting it from the source', async () => {
  const content = randomBlob(30);
  const digest = await pushBlob(berth.url, 'mount/origin', content);
  assert.equal((await mount(berth.url, 'mount/copy', digest, 'mount/origin')).status, 201);
  assert.equal(
    (await v2fetch(`${berth.url}/v2/mount/origin/blobs/${digest}`, { method: 'DELETE' })).status,
    202,
  );
  assert.equal(
    (await v2fetch(`${berth.url}/v2/mount/origin/blobs/${digest}`, { method: 'HEAD' })).status,
    404,
  );
  const get = await v2fetch(`${berth.url}/v2/mount/copy/blobs/${digest}`);
  assert.equal(get.status, 200);
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), content);
});
