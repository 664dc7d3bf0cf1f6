import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DEFAULT_SKU_PLANS } from '../../src/management/skus.js';
import {
  apiFor,
  createRegistry,
  dataPlane,
  pushBlobTo,
  sha256,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

/** Basic gets 200,000 bytes of storage here, so a test can fill it. */
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

test("a push past the SKU's storage quota is refused with DENIED and leaves nothing behind", async () => {
  const name = uniqueName('quota');
  await createRegistry(api, name, 'Basic');
  const first = randomBytes(150_000);
  await pushBlobTo(berth, name, 'app', first);

  const second = randomBytes(100_000);
  const refused = await dataPlane(berth, name, 'POST', `/v2/app/blobs/uploads/?digest=${sha256(second)}`, {
    body: second,
  });
  assert.equal(refused.status, 403);
  const error = (
    JSON.parse(refused.body.toString()) as {
      errors: { code: string; message: string; detail: { reason: string } }[];
    }
  ).errors[0]!;
  assert.equal(error.code, 'DENIED');
  assert.equal(error.detail.reason, 'storageQuotaExceeded');
  assert.match(error.message, /storage quota exceeded/);
  assert.equal((await dataPlane(berth, name, 'HEAD', `/v2/app/blobs/${sha256(second)}`)).status, 404);
  assert.deepEqual(readdirSync(join(berth.dataDir, 'blobs', name, 'uploads')), []);

  // A blob the registry already stores costs nothing, so another repository can still get it.
  await pushBlobTo(berth, name, 'other', first);

  const usages = await api('GET', `/api/registries/${name}/usages`);
  assert.equal(usages.status, 200, usages.text);
  const size = (usages.body as { value: { name: string; limit: number; currentValue: number }[] }).value.find(
    (u) => u.name === 'Size',
  );
  assert.deepEqual(size && { limit: size.limit, currentValue: size.currentValue }, {
    limit: BASIC_BYTES,
    currentValue: 150_000,
  });
});

test('moving to a larger SKU lifts the quota at once', async () => {
  const name = uniqueName('quotaup');
  await createRegistry(api, name, 'Basic');
  await pushBlobTo(berth, name, 'app', randomBytes(150_000));
  const big = randomBytes(100_000);
  const before = await dataPlane(berth, name, 'POST', `/v2/app/blobs/uploads/?digest=${sha256(big)}`, {
    body: big,
  });
  assert.equal(before.status, 403);
  assert.equal((await api('PATCH', `/api/registries/${name}`, { sku: { name: 'Standard' } })).status, 200);
  await pushBlobTo(berth, name, 'app', big);
});
