import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { DEFAULT_SKU_PLANS } from '../../src/management/skus.js';
import {
  apiFor,
  createRegistry,
  dataPlane,
  pushBlobTo,
  pushImageTo,
  sha256,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

const BASIC_BYTES = 200_000;
let berth: TestBerth;
let api: Api;
before(async () => {
  berth = await startTestBerth({
    skus: { ...DEFAULT_SKU_PLANS, Basic: { ...DEFAULT_SKU_PLANS.Basic, storageGiB: BASIC_BYTES / 2 ** 30 } },
  });
  api = apiFor(berth);
});
after(async () => {
  await berth.stop();
});

async function storageUsed(name: string): Promise<number> {
  const res = await api('GET', `/api/registries/${name}/usages`);
  assert.equal(res.status, 200, res.text);
  return (res.body as { value: { name: string; currentValue: number }[] }).value.find(
    (u) => u.name === 'Size',
  )!.currentValue;
}

test('a blob unlinked from its only repository is neither readable nor mountable, before any GC', async () => {
  const name = uniqueName('gone');
  await createRegistry(api, name, 'Premium');
  const blob = randomBytes(5000);
  const digest = await pushBlobTo(berth, name, 'src', blob);
  assert.equal((await dataPlane(berth, name, 'DELETE', `/v2/src/blobs/${digest}`)).status, 202);

  assert.equal((await dataPlane(berth, name, 'GET', `/v2/src/blobs/${digest}`)).status, 404);
  // Automatic content discovery finds nothing: the mount falls back to a new upload (202), not 201.
  const mount = await dataPlane(berth, name, 'POST', `/v2/dst/blobs/uploads/?mount=${digest}`);
  assert.equal(mount.status, 202);
  assert.equal((await dataPlane(berth, name, 'HEAD', `/v2/dst/blobs/${digest}`)).status, 404);
  const fromSource = await dataPlane(berth, name, 'POST', `/v2/dst/blobs/uploads/?mount=${digest}&from=src`);
  assert.equal(fromSource.status, 202);
});

test('a blob of a deleted repository is not mountable; one still linked elsewhere is', async () => {
  const name = uniqueName('gonerepo');
  await createRegistry(api, name, 'Premium');
  const lonely = await pushBlobTo(berth, name, 'doomed', randomBytes(3000));
  const shared = await pushBlobTo(berth, name, 'doomed', randomBytes(3000));
  await pushBlobTo(
    berth,
    name,
    'keeper',
    (await dataPlane(berth, name, 'GET', `/v2/doomed/blobs/${shared}`)).body,
  );
  assert.equal((await api('DELETE', `/api/registries/${name}/repositories/doomed`)).status, 204);

  assert.equal((await dataPlane(berth, name, 'POST', `/v2/new/blobs/uploads/?mount=${lonely}`)).status, 202);
  const mounted = await dataPlane(berth, name, 'POST', `/v2/new/blobs/uploads/?mount=${shared}`);
  assert.equal(mounted.status, 201);
  assert.equal((await dataPlane(berth, name, 'GET', `/v2/new/blobs/${shared}`)).status, 200);
});

test('deleting content frees quota: a Basic registry emptied by deletes accepts a push again', async () => {
  const name = uniqueName('freed');
  await createRegistry(api, name, 'Basic');
  const big = randomBytes(150_000);
  await pushBlobTo(berth, name, 'app', big);
  await pushImageTo(berth, name, 'app', 'v1');
  const other = randomBytes(100_000);
  const refused = await dataPlane(berth, name, 'POST', `/v2/app/blobs/uploads/?digest=${sha256(other)}`, {
    body: other,
  });
  assert.equal(refused.status, 403);
  assert.ok((await storageUsed(name)) >= 150_000);

  assert.equal((await api('DELETE', `/api/registries/${name}/repositories/app`)).status, 204);
  assert.equal(await storageUsed(name), 0);
  await pushBlobTo(berth, name, 'app2', other);
  assert.equal(await storageUsed(name), 100_000);

  // Unlinking a blob over the data plane frees its bytes from the quota too.
  assert.equal((await dataPlane(berth, name, 'DELETE', `/v2/app2/blobs/${sha256(other)}`)).status, 202);
  assert.equal(await storageUsed(name), 0);
  await pushBlobTo(berth, name, 'app3', big);
});
