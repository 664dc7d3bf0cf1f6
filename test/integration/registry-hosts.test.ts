import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  MT,
  digestOf,
  imageManifest,
  descriptorOf,
  randomBlob,
  rawRequest,
  type RawResponse,
  v2fetch,
} from '../helpers/oci.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth();
  assert.equal(
    await berth.meta.createRegistry({ name: 'second', createdAt: new Date(), properties: {} }),
    true,
  );
  // The directory learns of the new registry from the store's change feed; wait until it routes.
  for (let i = 0; i < 50; i++) {
    const probe = await as('second.localhost', { method: 'POST', path: '/v2/hosts/probe/blobs/uploads/' });
    const location = String(probe.headers.location);
    const routed = (await as('localhost', { path: location })).status === 404;
    await as(routed ? 'second.localhost' : 'localhost', { method: 'DELETE', path: location });
    if (routed) break;
    await sleep(20);
  }
});
after(async () => {
  await berth.stop();
});

/** A request addressed to `host` (fetch cannot set Host, so node:http it is). */
function as(
  host: string,
  request: { method?: string; path: string; body?: Buffer; headers?: Record<string, string> },
): Promise<RawResponse> {
  return rawRequest(berth.url, {
    ...request,
    headers: { ...request.headers, Host: `${host}:${new URL(berth.url).port}` },
  });
}

async function pushBlobAs(host: string, repo: string, content: Buffer): Promise<string> {
  const digest = digestOf(content);
  const res = await as(host, {
    method: 'POST',
    path: `/v2/${repo}/blobs/uploads/?digest=${digest}`,
    body: content,
  });
  assert.equal(res.status, 201, res.body.toString());
  return digest;
}

test('content pushed to one registry (by Host) is invisible through another', async () => {
  const config = Buffer.from('{"registry":"second"}');
  const layer = randomBlob(200);
  await pushBlobAs('second.localhost', 'hosts/app', config);
  const layerDigest = await pushBlobAs('second.localhost', 'hosts/app', layer);
  const manifest = Buffer.from(
    JSON.stringify(imageManifest(descriptorOf(MT.ociConfig, config), [descriptorOf(MT.ociLayer, layer)])),
  );
  const put = await as('second.localhost', {
    method: 'PUT',
    path: '/v2/hosts/app/manifests/v1',
    body: manifest,
    headers: { 'Content-Type': MT.ociManifest },
  });
  assert.equal(put.status, 201, put.body.toString());

  // Visible in the second registry, under any letter case and with or without a port.
  const mine = await as('second.localhost', { path: '/v2/hosts/app/manifests/v1' });
  assert.equal(mine.status, 200);
  assert.deepEqual(mine.body, manifest);
  assert.equal((await as('SECOND.localhost', { path: `/v2/hosts/app/blobs/${layerDigest}` })).status, 200);
  const catalog = await as('second.localhost', { path: '/v2/_catalog' });
  assert.deepEqual(JSON.parse(catalog.body.toString()).repositories, ['hosts/app']);

  // Invisible in the default registry (plain localhost, an unknown subdomain, or no usable Host).
  for (const host of ['localhost', 'third.localhost', '127.0.0.1']) {
    assert.equal((await as(host, { path: '/v2/hosts/app/manifests/v1' })).status, 404, host);
    assert.equal((await as(host, { path: `/v2/hosts/app/blobs/${layerDigest}` })).status, 404, host);
    const tags = await as(host, { path: '/v2/hosts/app/tags/list' });
    assert.equal(JSON.parse(tags.body.toString()).errors[0].code, 'NAME_UNKNOWN');
    const list = await as(host, { path: '/v2/_catalog' });
    assert.ok(!JSON.parse(list.body.toString()).repositories.includes('hosts/app'), host);
  }
  // And fetch (Host = 127.0.0.1:port) reaches the default registry too.
  assert.equal((await v2fetch(`${berth.url}/v2/hosts/app/manifests/v1`)).status, 404);
});

test('the same repository name in two registries holds different content', async () => {
  const a = randomBlob(10);
  const b = randomBlob(10);
  const digestA = await pushBlobAs('localhost', 'hosts/shared', a);
  const digestB = await pushBlobAs('second.localhost', 'hosts/shared', b);
  assert.equal((await as('localhost', { path: `/v2/hosts/shared/blobs/${digestA}` })).status, 200);
  assert.equal((await as('localhost', { path: `/v2/hosts/shared/blobs/${digestB}` })).status, 404);
  assert.equal((await as('second.localhost', { path: `/v2/hosts/shared/blobs/${digestB}` })).status, 200);
  assert.equal((await as('second.localhost', { path: `/v2/hosts/shared/blobs/${digestA}` })).status, 404);
  // A cross-registry mount is not possible either: `from` names a repository of the same registry.
  const mount = await as('second.localhost', {
    method: 'POST',
    path: `/v2/hosts/other/blobs/uploads/?mount=${digestA}&from=hosts/shared`,
  });
  assert.equal(mount.status, 202);
  // Nor with automatic content discovery.
  const auto = await as('second.localhost', {
    method: 'POST',
    path: `/v2/hosts/other/blobs/uploads/?mount=${digestA}`,
  });
  assert.equal(auto.status, 202);
});

test('an upload session belongs to the registry that opened it', async () => {
  const start = await as('second.localhost', { method: 'POST', path: '/v2/hosts/up/blobs/uploads/' });
  assert.equal(start.status, 202);
  const location = String(start.headers.location);
  assert.equal((await as('localhost', { path: location })).status, 404);
  assert.equal((await as('localhost', { method: 'PATCH', path: location, body: randomBlob(5) })).status, 404);
  assert.equal((await as('second.localhost', { path: location })).status, 204);
});
