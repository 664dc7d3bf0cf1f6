import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  MT,
  descriptorOf,
  digestOf,
  expectError,
  imageManifest,
  pushBlob,
  pushImage,
  pushManifest,
  putManifest,
  randomBlob,
  v2fetch,
} from '../helpers/oci.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let readOnly: TestBerth;
before(async () => {
  berth = await startTestBerth();
  readOnly = await startTestBerth({ registry: { deleteEnabled: false } });
});
after(async () => {
  await berth.stop();
  await readOnly.stop();
});

const del = (url: string) => v2fetch(url, { method: 'DELETE' });

async function tagsOf(repo: string): Promise<string[]> {
  const res = await v2fetch(`${berth.url}/v2/${repo}/tags/list`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { tags: string[] }).tags;
}

test('DELETE a manifest by digest: 202, its tags are gone, GET is 404', async () => {
  const image = await pushImage(berth.url, 'del/by-digest', 'v1');
  await pushManifest(berth.url, 'del/by-digest', 'latest', image.bytes);
  const keep = await pushImage(berth.url, 'del/by-digest', 'keep');
  assert.deepEqual(await tagsOf('del/by-digest'), ['keep', 'latest', 'v1']);

  const res = await del(`${berth.url}/v2/del/by-digest/manifests/${image.digest}`);
  assert.equal(res.status, 202);
  for (const reference of [image.digest, 'v1', 'latest']) {
    await expectError(
      await v2fetch(`${berth.url}/v2/del/by-digest/manifests/${reference}`),
      404,
      'MANIFEST_UNKNOWN',
    );
  }
  assert.deepEqual(await tagsOf('del/by-digest'), ['keep']);
  assert.equal((await v2fetch(`${berth.url}/v2/del/by-digest/manifests/keep`)).status, 200);
  assert.equal((await v2fetch(`${berth.url}/v2/del/by-digest/manifests/${keep.digest}`)).status, 200);
  // Its blobs stay (they are separately addressable).
  assert.equal((await v2fetch(`${berth.url}/v2/del/by-digest/blobs/${image.layers[0]!.digest}`)).status, 200);
  // Deleting again is 404.
  await expectError(
    await del(`${berth.url}/v2/del/by-digest/manifests/${image.digest}`),
    404,
    'MANIFEST_UNKNOWN',
  );
});

test('DELETE a manifest by tag: 202, only the tag goes, the digest is still served', async () => {
  const image = await pushImage(berth.url, 'del/by-tag', 'v1');
  await pushManifest(berth.url, 'del/by-tag', 'v2', image.bytes);
  const res = await del(`${berth.url}/v2/del/by-tag/manifests/v1`);
  assert.equal(res.status, 202);
  await expectError(await v2fetch(`${berth.url}/v2/del/by-tag/manifests/v1`), 404, 'MANIFEST_UNKNOWN');
  const byDigest = await v2fetch(`${berth.url}/v2/del/by-tag/manifests/${image.digest}`);
  assert.equal(byDigest.status, 200);
  assert.deepEqual(Buffer.from(await byDigest.arrayBuffer()), image.bytes);
  assert.equal((await v2fetch(`${berth.url}/v2/del/by-tag/manifests/v2`)).status, 200);
  assert.deepEqual(await tagsOf('del/by-tag'), ['v2']);
  await expectError(await del(`${berth.url}/v2/del/by-tag/manifests/v1`), 404, 'MANIFEST_UNKNOWN');
});

test('a manifest deleted and pushed again is served again', async () => {
  const image = await pushImage(berth.url, 'del/again', 'v1');
  assert.equal((await del(`${berth.url}/v2/del/again/manifests/${image.digest}`)).status, 202);
  await pushManifest(berth.url, 'del/again', 'v1', image.bytes);
  const res = await v2fetch(`${berth.url}/v2/del/again/manifests/v1`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), image.digest);
});

test('DELETE a blob: 202, then 404; a manifest over it can no longer be pushed', async () => {
  const content = randomBlob(64);
  const digest = await pushBlob(berth.url, 'del/blob', content);
  const res = await del(`${berth.url}/v2/del/blob/blobs/${digest}`);
  assert.equal(res.status, 202);
  await expectError(await v2fetch(`${berth.url}/v2/del/blob/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  assert.equal((await v2fetch(`${berth.url}/v2/del/blob/blobs/${digest}`, { method: 'HEAD' })).status, 404);
  await expectError(await del(`${berth.url}/v2/del/blob/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  const config = Buffer.from('{"os":"linux"}');
  await pushBlob(berth.url, 'del/blob', config);
  const manifest = imageManifest(descriptorOf(MT.ociConfig, config), [descriptorOf(MT.ociLayer, content)]);
  await expectError(await putManifest(berth.url, 'del/blob', 'v1', manifest), 404, 'MANIFEST_BLOB_UNKNOWN');
  // Pushing it again brings it back.
  await pushBlob(berth.url, 'del/blob', content);
  assert.equal((await v2fetch(`${berth.url}/v2/del/blob/blobs/${digest}`)).status, 200);
  assert.equal((await putManifest(berth.url, 'del/blob', 'v1', manifest)).status, 201);
});

test('DELETE of unknown things is 404; of invalid references 400', async () => {
  await pushImage(berth.url, 'del/unknown', 'v1');
  const unknown = digestOf(randomBlob());
  await expectError(await del(`${berth.url}/v2/del/unknown/manifests/${unknown}`), 404, 'MANIFEST_UNKNOWN');
  await expectError(await del(`${berth.url}/v2/del/unknown/manifests/nope`), 404, 'MANIFEST_UNKNOWN');
  await expectError(await del(`${berth.url}/v2/del/unknown/blobs/${unknown}`), 404, 'BLOB_UNKNOWN');
  await expectError(await del(`${berth.url}/v2/del/unknown/blobs/sha256:abc`), 400, 'DIGEST_INVALID');
  await expectError(await del(`${berth.url}/v2/del/unknown/manifests/-bad`), 400, 'TAG_INVALID');
  const repo = await del(`${berth.url}/v2/del/no-such-repo/manifests/${unknown}`);
  assert.equal(repo.status, 404);
});

test('with deletes disabled, all three deletes are 405 UNSUPPORTED and nothing is removed', async () => {
  const image = await pushImage(readOnly.url, 'del/ro', 'v1');
  const blob = image.layers[0]!.digest;
  for (const path of ['manifests/v1', `manifests/${image.digest}`, `blobs/${blob}`]) {
    await expectError(await del(`${readOnly.url}/v2/del/ro/${path}`), 405, 'UNSUPPORTED');
  }
  assert.equal((await v2fetch(`${readOnly.url}/v2/del/ro/manifests/v1`)).status, 200);
  assert.equal((await v2fetch(`${readOnly.url}/v2/del/ro/manifests/${image.digest}`)).status, 200);
  assert.equal((await v2fetch(`${readOnly.url}/v2/del/ro/blobs/${blob}`)).status, 200);
  // Uploads can still be cancelled: that deletes nothing committed.
  const start = await v2fetch(`${readOnly.url}/v2/del/ro/blobs/uploads/`, { method: 'POST' });
  const location = new URL(start.headers.get('location')!, readOnly.url).href;
  assert.equal((await del(location)).status, 204);
});
