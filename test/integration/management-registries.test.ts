import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  apiFor,
  createRegistry,
  dataPlane,
  expectApiError,
  pushBlobTo,
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

test('PUT creates a registry: 201 with the ARM resource shape and defaults', async () => {
  const name = uniqueName('create');
  const before = Date.now();
  const res = await api('PUT', `/api/registries/${name}`, { sku: { name: 'Premium' } });
  assert.equal(res.status, 201, res.text);
  const r = res.body;
  assert.equal(r.id, `/registries/${name}`);
  assert.equal(r.name, name);
  assert.equal(r.type, 'Berth/registries');
  assert.deepEqual(r.sku, { name: 'Premium', tier: 'Premium' });
  assert.equal(r.properties.loginServer, `${name}.localhost`);
  assert.equal(r.properties.provisioningState, 'Succeeded');
  assert.equal(r.properties.adminUserEnabled, false);
  assert.equal(r.properties.anonymousPullEnabled, false);
  assert.equal(r.properties.publicNetworkAccess, 'Enabled');
  assert.deepEqual(r.properties.networkRuleSet, { defaultAction: 'Allow', ipRules: [] });
  assert.equal(r.properties.networkRuleBypassOptions, 'AzureServices');
  assert.deepEqual(r.properties.privateEndpointConnections, []);
  const created = Date.parse(r.properties.creationDate);
  assert.ok(created >= before - 1000 && created <= Date.now() + 1000, r.properties.creationDate);

  const got = await api('GET', `/api/registries/${name}`);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, r);
});

test('PUT on an existing registry replaces it: 200, settable properties reset, creationDate kept', async () => {
  const name = uniqueName('replace');
  const created = await createRegistry(api, name, 'Premium', {
    adminUserEnabled: true,
    anonymousPullEnabled: true,
    networkRuleBypassOptions: 'None',
    networkRuleSet: { defaultAction: 'Deny', ipRules: [{ action: 'Allow', value: '203.0.113.0/24' }] },
  });
  const res = await api('PUT', `/api/registries/${name}`, {
    sku: { name: 'Premium' },
    properties: { anonymousPullEnabled: true },
  });
  assert.equal(res.status, 200, res.text);
  const p = res.body.properties;
  assert.equal(res.body.sku.name, 'Premium');
  assert.equal(p.anonymousPullEnabled, true);
  assert.equal(p.adminUserEnabled, false, 'not in the body, so back to the default');
  assert.equal(p.networkRuleBypassOptions, 'AzureServices');
  assert.deepEqual(p.networkRuleSet, { defaultAction: 'Allow', ipRules: [] });
  assert.equal(p.creationDate, created.properties.creationDate);
  const got = await api('GET', `/api/registries/${name}`);
  assert.deepEqual(got.body, res.body, 'the replacement was stored');
});

test('names are case-insensitive: MyReg… and myreg… address the same resource', async () => {
  const mixed = `MyReg${randomBytes(4).toString('hex')}`;
  const lower = mixed.toLowerCase();
  const res = await api('PUT', `/api/registries/${mixed}`, { sku: { name: 'Basic' } });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.name, lower, 'stored in lower case');
  assert.equal(res.body.properties.loginServer, `${lower}.localhost`);

  const again = await api('PUT', `/api/registries/${lower}`, { sku: { name: 'Standard' } });
  assert.equal(again.status, 200, 'the lower-case name is the same registry, so this replaces it');
  assert.equal(again.body.properties.creationDate, res.body.properties.creationDate);

  const viaMixed = await api('GET', `/api/registries/${mixed.toUpperCase()}`);
  assert.equal(viaMixed.status, 200);
  assert.equal(viaMixed.body.sku.name, 'Standard');
  const list = await api('GET', '/api/registries');
  assert.equal(list.body.value.filter((r: { name: string }) => r.name === lower).length, 1);
});

test('concurrent creates of one name (in any case): one 201, the rest replace or 409 RegistryNameInUse', async () => {
  const lower = uniqueName('race');
  const spellings = [lower, lower.toUpperCase(), lower, `${lower[0]!.toUpperCase()}${lower.slice(1)}`, lower];
  const results = await Promise.all(
    spellings.map((name) => api('PUT', `/api/registries/${name}`, { sku: { name: 'Basic' } })),
  );
  const statuses = results.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 201).length, 1, statuses.join(','));
  for (const res of results) {
    if (res.status === 409) expectApiError(res, 409, 'RegistryNameInUse', lower);
    else assert.ok([200, 201].includes(res.status), `${res.status}: ${res.text}`);
  }
  const list = await api('GET', '/api/registries');
  assert.equal(list.body.value.filter((r: { name: string }) => r.name === lower).length, 1);
});

test('GET /api/registries lists every registry including the default one', async () => {
  const a = uniqueName('lista');
  const b = uniqueName('listb');
  await createRegistry(api, a, 'Basic');
  await createRegistry(api, b, 'Standard');
  const res = await api('GET', '/api/registries');
  assert.equal(res.status, 200);
  const names = (res.body.value as { name: string; sku: { name: string } }[]).map((r) => r.name);
  assert.ok(names.includes(a) && names.includes(b) && names.includes('default'), names.join(','));
  const bEntry = (res.body.value as { name: string; sku: { name: string } }[]).find((r) => r.name === b);
  assert.equal(bEntry?.sku.name, 'Standard');
});

test('PATCH merges objects: defaultAction alone keeps the existing ipRules', async () => {
  const name = uniqueName('patchmerge');
  await createRegistry(api, name, 'Premium', {
    adminUserEnabled: false,
    networkRuleSet: { ipRules: [{ value: '198.51.100.0/24' }, { value: '203.0.113.7' }] },
  });
  const res = await api('PATCH', `/api/registries/${name}`, {
    properties: { networkRuleSet: { defaultAction: 'Deny' } },
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.properties.networkRuleSet, {
    defaultAction: 'Deny',
    ipRules: [
      { action: 'Allow', value: '198.51.100.0/24' },
      { action: 'Allow', value: '203.0.113.7' },
    ],
  });
  assert.equal(res.body.sku.name, 'Premium', 'sku not in the body, so unchanged');

  const second = await api('PATCH', `/api/registries/${name}`, {
    properties: { anonymousPullEnabled: true },
  });
  assert.equal(second.body.properties.anonymousPullEnabled, true);
  assert.equal(second.body.properties.networkRuleSet.defaultAction, 'Deny', 'earlier PATCH kept');
  assert.equal(second.body.properties.networkRuleSet.ipRules.length, 2);
});

test('PATCH replaces arrays: a new ipRules list replaces the old one, [] clears it', async () => {
  const name = uniqueName('patcharray');
  await createRegistry(api, name, 'Premium', {
    networkRuleSet: { defaultAction: 'Deny', ipRules: [{ value: '10.0.0.0/8' }, { value: '10.1.2.3' }] },
  });
  const res = await api('PATCH', `/api/registries/${name}`, {
    properties: { networkRuleSet: { ipRules: [{ value: '192.0.2.1' }] } },
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.properties.networkRuleSet, {
    defaultAction: 'Deny',
    ipRules: [{ action: 'Allow', value: '192.0.2.1' }],
  });
  const cleared = await api('PATCH', `/api/registries/${name}`, {
    properties: { networkRuleSet: { ipRules: [] } },
  });
  assert.deepEqual(cleared.body.properties.networkRuleSet.ipRules, []);
  const got = await api('GET', `/api/registries/${name}`);
  assert.deepEqual(got.body.properties.networkRuleSet, { defaultAction: 'Deny', ipRules: [] });
});

test('PATCH with an empty body changes nothing; read-only properties are accepted and ignored', async () => {
  const name = uniqueName('patchnoop');
  const created = await createRegistry(api, name, 'Standard', { anonymousPullEnabled: true });
  const empty = await api('PATCH', `/api/registries/${name}`, {});
  assert.equal(empty.status, 200, empty.text);
  assert.deepEqual(empty.body, created);
  const readOnly = await api('PATCH', `/api/registries/${name}`, {
    id: '/registries/other',
    name: 'other',
    properties: { loginServer: 'evil.example', creationDate: '2000-01-01T00:00:00Z', provisioningState: 'X' },
  });
  assert.equal(readOnly.status, 200, readOnly.text);
  assert.deepEqual(readOnly.body, created);
});

test('unknown registries: GET, PATCH, DELETE and sub-resources are 404 ResourceNotFound', async () => {
  const missing = uniqueName('missing');
  expectApiError(await api('GET', `/api/registries/${missing}`), 404, 'ResourceNotFound', missing);
  expectApiError(
    await api('PATCH', `/api/registries/${missing}`, { properties: { anonymousPullEnabled: true } }),
    404,
    'ResourceNotFound',
  );
  expectApiError(await api('DELETE', `/api/registries/${missing}`), 404, 'ResourceNotFound');
  expectApiError(await api('GET', `/api/registries/${missing}/endpoints`), 404, 'ResourceNotFound');
  expectApiError(await api('POST', `/api/registries/${missing}/listCredentials`), 404, 'ResourceNotFound');
  expectApiError(await api('GET', '/api/no/such/operation'), 404, 'ResourceNotFound');
});

test('the default registry cannot be deleted: 409 Conflict, and it still exists', async () => {
  const res = await api('DELETE', '/api/registries/default');
  expectApiError(res, 409, 'Conflict', 'default');
  assert.equal((await api('GET', '/api/registries/default')).status, 200);
});

test('DELETE removes the registry and its content: a re-created registry does not serve old blobs', async () => {
  const name = uniqueName('delcontent');
  await createRegistry(api, name, 'Basic');
  const blob = randomBytes(128);
  const digest = await pushBlobTo(berth, name, 'app/web', blob);
  const found = await dataPlane(berth, name, 'GET', `/v2/app/web/blobs/${digest}`);
  assert.equal(found.status, 200);
  assert.deepEqual(found.body, blob);
  // The same blob is not in the default registry: Host really selected the new registry.
  assert.equal((await dataPlane(berth, 'default', 'HEAD', `/v2/app/web/blobs/${digest}`)).status, 404);

  const del = await api('DELETE', `/api/registries/${name}`);
  assert.equal(del.status, 204, del.text);
  assert.equal(del.text, '');
  expectApiError(await api('GET', `/api/registries/${name}`), 404, 'ResourceNotFound');
  const list = await api('GET', '/api/registries');
  assert.ok(!list.body.value.some((r: { name: string }) => r.name === name));
  expectApiError(await api('DELETE', `/api/registries/${name}`), 404, 'ResourceNotFound');

  await createRegistry(api, name, 'Basic');
  const gone = await dataPlane(berth, name, 'GET', `/v2/app/web/blobs/${digest}`);
  assert.equal(gone.status, 404, gone.body.toString());
  const repos = await api('GET', `/api/registries/${name}/repositories`);
  assert.deepEqual(repos.body.value, []);
});

test('GET endpoints: login server, data endpoints and private endpoints', async () => {
  const name = uniqueName('endpoints');
  await createRegistry(api, name, 'Premium');
  const res = await api('GET', `/api/registries/${name}/endpoints`);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, {
    loginServer: `${name}.localhost`,
    dataEndpoints: berth.urls,
    privateEndpoints: [],
  });
});
