import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiFor,
  createApiKey,
  createRegistry,
  dataPlane,
  expectApiError,
  pushImageTo,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
});
after(async () => {
  await berth.stop();
});

const APP = encodeURIComponent('team/app');

/** A Premium registry with team/app:v1, team/app:v2 and solo:latest pushed through the data plane. */
async function populated(): Promise<{ name: string; v1: string; v2: string; solo: string }> {
  const name = uniqueName('repos');
  await createRegistry(api, name, 'Premium');
  const v1 = await pushImageTo(berth, name, 'team/app', 'v1');
  const v2 = await pushImageTo(berth, name, 'team/app', 'v2');
  const solo = await pushImageTo(berth, name, 'solo', 'latest');
  return { name, v1, v2, solo };
}

test('list repositories, with n/last paging, only those of the addressed registry', async () => {
  const { name } = await populated();
  const res = await api('GET', `/api/registries/${name}/repositories`);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, { value: ['solo', 'team/app'] });
  assert.deepEqual((await api('GET', `/api/registries/${name}/repositories?n=1`)).body.value, ['solo']);
  assert.deepEqual((await api('GET', `/api/registries/${name}/repositories?n=1&last=solo`)).body.value, [
    'team/app',
  ]);
  const other = uniqueName('empty');
  await createRegistry(api, other, 'Basic');
  assert.deepEqual((await api('GET', `/api/registries/${other}/repositories`)).body.value, []);
});

test('show a repository: tag and manifest counts', async () => {
  const { name } = await populated();
  const res = await api('GET', `/api/registries/${name}/repositories/${APP}`);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, { registry: name, name: 'team/app', tagCount: 2, manifestCount: 2 });
  expectApiError(
    await api('GET', `/api/registries/${name}/repositories/nothere`),
    404,
    'ResourceNotFound',
    'nothere',
  );
  expectApiError(
    await api('GET', `/api/registries/${name}/repositories/UPPER`),
    400,
    'InvalidParameter',
    'UPPER',
  );
});

test('list tags with their digests', async () => {
  const { name, v1, v2 } = await populated();
  const res = await api('GET', `/api/registries/${name}/repositories/${APP}/tags`);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, {
    value: [
      { name: 'v1', digest: v1 },
      { name: 'v2', digest: v2 },
    ],
  });
  expectApiError(
    await api('GET', `/api/registries/${name}/repositories/nothere/tags`),
    404,
    'ResourceNotFound',
  );
});

test('untag removes the tag but keeps the manifest', async () => {
  const { name, v1 } = await populated();
  const res = await api('DELETE', `/api/registries/${name}/repositories/${APP}/tags/v1`);
  assert.equal(res.status, 204, res.text);
  const tags = await api('GET', `/api/registries/${name}/repositories/${APP}/tags`);
  assert.deepEqual(
    tags.body.value.map((t: { name: string }) => t.name),
    ['v2'],
  );
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/team/app/manifests/v1')).status, 404);
  const byDigest = await dataPlane(berth, name, 'GET', `/v2/team/app/manifests/${v1}`, {
    headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(byDigest.status, 200, 'the manifest is still there');
  const stats = await api('GET', `/api/registries/${name}/repositories/${APP}`);
  assert.deepEqual([stats.body.tagCount, stats.body.manifestCount], [1, 2]);

  expectApiError(
    await api('DELETE', `/api/registries/${name}/repositories/${APP}/tags/v1`),
    404,
    'ResourceNotFound',
    "'v1'",
  );
  expectApiError(
    await api('DELETE', `/api/registries/${name}/repositories/${APP}/tags/${'bad%20tag'}`),
    400,
    'InvalidParameter',
  );
});

test('delete a repository: its tags and manifests are gone, other repositories stay', async () => {
  const { name, v2, solo } = await populated();
  const res = await api('DELETE', `/api/registries/${name}/repositories/${APP}`);
  assert.equal(res.status, 204, res.text);
  assert.deepEqual((await api('GET', `/api/registries/${name}/repositories`)).body.value, ['solo']);
  expectApiError(await api('GET', `/api/registries/${name}/repositories/${APP}`), 404, 'ResourceNotFound');
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/team/app/manifests/v2')).status, 404);
  assert.equal((await dataPlane(berth, name, 'HEAD', `/v2/team/app/manifests/${v2}`)).status, 404);
  assert.equal((await dataPlane(berth, name, 'HEAD', `/v2/solo/manifests/${solo}`)).status, 200);
  expectApiError(await api('DELETE', `/api/registries/${name}/repositories/${APP}`), 404, 'ResourceNotFound');
});

test('repository operations follow roles: Reader may list, only Contributor may delete', async () => {
  const { name } = await populated();
  const reader = (await createApiKey(api, uniqueName('repreader'), 'Reader', name)).auth;
  assert.equal((await api('GET', `/api/registries/${name}/repositories`, undefined, reader)).status, 200);
  assert.equal(
    (await api('GET', `/api/registries/${name}/repositories/${APP}/tags`, undefined, reader)).status,
    200,
  );
  expectApiError(
    await api('DELETE', `/api/registries/${name}/repositories/${APP}/tags/v1`, undefined, reader),
    403,
    'AuthorizationFailed',
  );
  expectApiError(
    await api('DELETE', `/api/registries/${name}/repositories/${APP}`, undefined, reader),
    403,
    'AuthorizationFailed',
  );
  const contributor = (await createApiKey(api, uniqueName('repcontrib'), 'Contributor', name)).auth;
  const untag = await api(
    'DELETE',
    `/api/registries/${name}/repositories/${APP}/tags/v1`,
    undefined,
    contributor,
  );
  assert.equal(untag.status, 204, untag.text);
});

test("repository views obey the registry's network rules for the caller; the registry resource does not", async () => {
  const { name } = await populated();
  const deny = await api('PATCH', `/api/registries/${name}`, {
    properties: { networkRuleSet: { defaultAction: 'Deny', ipRules: [{ value: '203.0.113.0/24' }] } },
  });
  assert.equal(deny.status, 200, deny.text);

  const views = [
    ['GET', `/api/registries/${name}/repositories`],
    ['GET', `/api/registries/${name}/repositories/${APP}`],
    ['GET', `/api/registries/${name}/repositories/${APP}/tags`],
    ['DELETE', `/api/registries/${name}/repositories/${APP}/tags/v1`],
    ['DELETE', `/api/registries/${name}/repositories/${APP}`],
  ] as const;
  for (const [method, path] of views) {
    const error = expectApiError(await api(method, path), 403, 'NetworkAccessDenied', "'127.0.0.1'");
    assert.equal(error.target, 'ipNotAllowed');
  }

  // ARM operations on the registry itself are not subject to the registry's rules.
  assert.equal((await api('GET', `/api/registries/${name}`)).status, 200);
  assert.equal((await api('GET', `/api/registries/${name}/endpoints`)).status, 200);
  const check = await api('POST', `/api/registries/${name}/checkNetworkAccess`, { ip: '127.0.0.1' });
  assert.equal(check.body.allowed, false);

  // Nothing was deleted by the refused requests; allowing 127.0.0.1 opens the views again.
  const allow = await api('PATCH', `/api/registries/${name}`, {
    properties: { networkRuleSet: { ipRules: [{ value: '203.0.113.0/24' }, { value: '127.0.0.0/8' }] } },
  });
  assert.equal(allow.status, 200, allow.text);
  const tags = await api('GET', `/api/registries/${name}/repositories/${APP}/tags`);
  assert.equal(tags.status, 200, tags.text);
  assert.equal(tags.body.value.length, 2);

  const disabled = await api('PATCH', `/api/registries/${name}`, {
    properties: { publicNetworkAccess: 'Disabled' },
  });
  assert.equal(disabled.status, 200, disabled.text);
  const error = expectApiError(
    await api('GET', `/api/registries/${name}/repositories`),
    403,
    'NetworkAccessDenied',
  );
  assert.equal(error.target, 'publicNetworkAccessDisabled');
  assert.equal(
    (await api('PATCH', `/api/registries/${name}`, { properties: { publicNetworkAccess: 'Enabled' } }))
      .status,
    200,
  );
  assert.equal((await api('GET', `/api/registries/${name}/repositories`)).status, 200);
});
