// A Berth whose blobs live on Azurite: pushes and pulls through the server, and `blobRedirect`, which
// answers blob GETs with 307 to a short-lived read-only SAS URL only after the network guard, sign-in
// and the repository's link check said yes.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import { azuriteContainer } from '../helpers/azurite.js';
import { expectDenied, send, setNetwork } from '../helpers/net.js';
import { bytes, digestOf, expectError, pushBlob, pushImage, randomBlob, v2fetch } from '../helpers/oci.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

/** A Berth on a fresh Azurite container, or undefined when the test was skipped. */
async function berthOnAzurite(t: TestContext, blobRedirect: boolean): Promise<TestBerth | undefined> {
  const target = await azuriteContainer(t);
  if (!target) return undefined;
  const berth = await startTestBerth({
    blobStore: `azure://devstoreaccount1/${target.container}`,
    azureStorageConnectionString: target.connectionString,
    blobRedirect,
  });
  t.after(async () => {
    await berth.stop();
    await BlobServiceClient.fromConnectionString(target.connectionString)
      .getContainerClient(target.container)
      .deleteIfExists();
  });
  return berth;
}

test('blobRedirect: GET answers 307 to a SAS URL serving the exact bytes; HEAD is answered directly', async (t) => {
  const berth = await berthOnAzurite(t, true);
  if (!berth) return;
  const content = randomBlob(3 * 1024 * 1024 + 17);
  const digest = await pushBlob(berth.url, 'redirect/app', content);

  const res = await v2fetch(`${berth.url}/v2/redirect/app/blobs/${digest}`, { redirect: 'manual' });
  assert.equal(res.status, 307, await res.text());
  assert.equal(res.headers.get('docker-content-digest'), digest);
  const location = res.headers.get('location')!;
  const sas = new URL(location);
  assert.equal(sas.hostname, '127.0.0.1');
  assert.equal(sas.searchParams.get('sp'), 'r', 'read-only');
  assert.ok(sas.searchParams.get('se'), 'it expires');
  // No registry credentials go to the storage account: the URL alone reads the blob.
  const direct = await fetch(location);
  assert.equal(direct.status, 200);
  assert.equal(digestOf(Buffer.from(await direct.arrayBuffer())), digest);
  const ranged = await fetch(location, { headers: { Range: 'bytes=10-19' } });
  assert.equal(ranged.status, 206);
  assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), content.subarray(10, 20));
  // A client that follows redirects (fetch's default) just gets the blob.
  const followed = await v2fetch(`${berth.url}/v2/redirect/app/blobs/${digest}`);
  assert.equal(digestOf(Buffer.from(await followed.arrayBuffer())), digest);

  const head = await v2fetch(`${berth.url}/v2/redirect/app/blobs/${digest}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('docker-content-digest'), digest);
  assert.equal(head.headers.get('content-length'), String(content.length));
});

test('blobRedirect: refused networks get 403 DENIED, anonymous clients 401, other repositories 404 — never a URL', async (t) => {
  const berth = await berthOnAzurite(t, true);
  if (!berth) return;
  const digest = await pushBlob(berth.url, 'guarded/app', randomBlob(1000));
  const path = `/v2/guarded/app/blobs/${digest}`;

  const anonymous = await send(berth.url, path, { anonymous: true });
  assert.equal(anonymous.status, 401, anonymous.text);
  assert.equal(anonymous.headers.location, undefined);

  await pushImage(berth.url, 'other/repo');
  const unlinked = await v2fetch(`${berth.url}/v2/other/repo/blobs/${digest}`, { redirect: 'manual' });
  await expectError(unlinked, 404, 'BLOB_UNKNOWN');

  await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.1'] });
  const refused = await send(berth.url, path, { from: '127.0.0.2' });
  expectDenied(refused, '127.0.0.2', 'ipNotAllowed');
  assert.equal(refused.headers.location, undefined);
  const allowed = await send(berth.url, path, { from: '127.0.0.1' });
  assert.equal(allowed.status, 307, allowed.text);
});

test('blobRedirect: a manifest fetched through the blobs endpoint is served directly', async (t) => {
  const berth = await berthOnAzurite(t, true);
  if (!berth) return;
  const image = await pushImage(berth.url, 'redirect/manifest');
  const res = await v2fetch(`${berth.url}/v2/redirect/manifest/blobs/${image.digest}`, {
    redirect: 'manual',
  });
  assert.equal(res.status, 200);
  assert.equal(digestOf(Buffer.from(await res.arrayBuffer())), image.digest);
});

test('without blobRedirect, blobs on Azure stream through the server, ranges and chunked uploads included', async (t) => {
  const berth = await berthOnAzurite(t, false);
  if (!berth) return;
  const content = randomBlob(5 * 1024 * 1024 + 3);
  const start = await v2fetch(`${berth.url}/v2/stream/app/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  let location = new URL(start.headers.get('location')!, berth.url).href;
  const cut = 2 * 1024 * 1024 + 1;
  const chunk = await v2fetch(location, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${cut - 1}` },
    body: bytes(content.subarray(0, cut)),
  });
  assert.equal(chunk.status, 202, await chunk.text());
  location = new URL(chunk.headers.get('location')!, berth.url).href;
  const digest = digestOf(content);
  const done = await v2fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${cut}-${content.length - 1}` },
    body: bytes(content.subarray(cut)),
  });
  assert.equal(done.status, 201, await done.text());

  const res = await v2fetch(`${berth.url}/v2/stream/app/blobs/${digest}`, { redirect: 'manual' });
  assert.equal(res.status, 200);
  assert.equal(digestOf(Buffer.from(await res.arrayBuffer())), digest);
  const ranged = await v2fetch(`${berth.url}/v2/stream/app/blobs/${digest}`, {
    headers: { Range: 'bytes=100-199' },
  });
  assert.equal(ranged.status, 206);
  assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), content.subarray(100, 200));
});
