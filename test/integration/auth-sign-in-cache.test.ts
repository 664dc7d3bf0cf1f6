// Credentials sent on every request are verified once and then remembered (src/auth/sign-in-cache.ts):
// these check that what they were verified against changing takes effect on the very next request.
// (Disabled, deleted and renewed token passwords, role removals and the admin user are covered in
// auth-tokens and auth-identities.)

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiFor,
  basic,
  createRegistry,
  dataPlane,
  pushImageTo,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
let reg: string;

before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
  reg = uniqueName('sic');
  await createRegistry(api, reg, 'Premium');
  for (const repo of ['app', 'other']) await pushImageTo(berth, reg, repo, 'v1');
});
after(() => berth.stop());

const get = async (auth: string, repo: string) =>
  (await dataPlane(berth, reg, 'GET', `/v2/${repo}/manifests/v1`, { headers: { Authorization: auth } }))
    .status;

test("a scope map's new actions apply to its tokens' Basic credentials on the next request", async () => {
  const name = uniqueName('t');
  assert.equal(
    (
      await api('PUT', `/api/registries/${reg}/scopeMaps/${name}map`, {
        properties: { actions: ['repositories/app/content/read'] },
      })
    ).status,
    201,
  );
  assert.equal(
    (
      await api('PUT', `/api/registries/${reg}/tokens/${name}`, {
        properties: { scopeMapId: `/registries/${reg}/scopeMaps/${name}map` },
      })
    ).status,
    201,
  );
  const generated = await api('POST', `/api/registries/${reg}/generateCredentials`, {
    tokenId: name,
    name: 'password1',
  });
  const auth = basic(name, generated.body.passwords[0].value as string);
  for (let i = 0; i < 3; i++) assert.equal(await get(auth, 'app'), 200);
  assert.equal(await get(auth, 'other'), 403);
  const changed = await api('PATCH', `/api/registries/${reg}/scopeMaps/${name}map`, {
    properties: { actions: ['repositories/other/content/read'] },
  });
  assert.equal(changed.status, 200, changed.text);
  assert.equal(await get(auth, 'app'), 403, 'the old scope map still applied');
  assert.equal(await get(auth, 'other'), 200);
});

test('a wrong password never hits a remembered sign-in of the same user', async () => {
  const name = uniqueName('t');
  await api('PUT', `/api/registries/${reg}/tokens/${name}`, {
    properties: { scopeMapId: `/registries/${reg}/scopeMaps/_repositories_pull` },
  });
  const generated = await api('POST', `/api/registries/${reg}/generateCredentials`, {
    tokenId: name,
    name: 'password1',
  });
  const password = generated.body.passwords[0].value as string;
  assert.equal(await get(basic(name, password), 'app'), 200);
  assert.equal(await get(basic(name, `${password}x`), 'app'), 401);
  assert.equal(await get(basic(name, password.slice(0, -1)), 'app'), 401);
  assert.equal(await get(basic(name, password), 'app'), 200);
});
