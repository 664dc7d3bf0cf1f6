import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiFor,
  createRegistry,
  expectApiError,
  freePort,
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

const PREMIUM_ONLY = 'Network rules are only supported for registries in the Premium SKU.';

const networkFeatures: [string, Record<string, unknown>][] = [
  ['defaultAction Deny', { networkRuleSet: { defaultAction: 'Deny' } }],
  ['an IP rule', { networkRuleSet: { ipRules: [{ action: 'Allow', value: '203.0.113.0/24' }] } }],
  ['publicNetworkAccess Disabled', { publicNetworkAccess: 'Disabled' }],
];

for (const sku of ['Basic', 'Standard'] as const) {
  for (const [feature, properties] of networkFeatures) {
    test(`${sku}: ${feature} is 400 SkuNotSupported on PATCH and on create`, async () => {
      const name = uniqueName(sku.toLowerCase());
      await createRegistry(api, name, sku);
      const patch = await api('PATCH', `/api/registries/${name}`, { properties });
      const error = expectApiError(patch, 400, 'SkuNotSupported');
      assert.equal(error.message, PREMIUM_ONLY);
      const got = await api('GET', `/api/registries/${name}`);
      assert.deepEqual(got.body.properties.networkRuleSet, { defaultAction: 'Allow', ipRules: [] });
      assert.equal(got.body.properties.publicNetworkAccess, 'Enabled');

      const other = uniqueName(`${sku.toLowerCase()}put`);
      const put = await api('PUT', `/api/registries/${other}`, { sku: { name: sku }, properties });
      assert.equal(expectApiError(put, 400, 'SkuNotSupported').message, PREMIUM_ONLY);
      expectApiError(await api('GET', `/api/registries/${other}`), 404, 'ResourceNotFound');
    });
  }

  test(`${sku}: creating a private endpoint connection is 400 SkuNotSupported`, async () => {
    const name = uniqueName(`${sku.toLowerCase()}pe`);
    await createRegistry(api, name, sku);
    const port = await freePort();
    const res = await api('PUT', `/api/registries/${name}/privateEndpointConnections/pe1`, {
      properties: { privateEndpoint: { address: `127.0.0.1:${port}` } },
    });
    assert.equal(expectApiError(res, 400, 'SkuNotSupported').message, PREMIUM_ONLY);
    const list = await api('GET', `/api/registries/${name}/privateEndpointConnections`);
    assert.deepEqual(list.body.value, []);
  });
}

test('Standard may state the defaults explicitly (Allow, no rules, Enabled)', async () => {
  const name = uniqueName('stddefaults');
  const res = await api('PUT', `/api/registries/${name}`, {
    sku: { name: 'Standard' },
    properties: {
      publicNetworkAccess: 'Enabled',
      networkRuleSet: { defaultAction: 'Allow', ipRules: [] },
      networkRuleBypassOptions: 'None',
    },
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.properties.networkRuleBypassOptions, 'None');
});

test('downgrading Premium to Standard while rules exist is 400 saying what to remove first', async () => {
  const name = uniqueName('downgrade');
  await createRegistry(api, name, 'Premium', {
    publicNetworkAccess: 'Disabled',
    networkRuleSet: { defaultAction: 'Deny', ipRules: [{ value: '203.0.113.0/24' }, { value: '192.0.2.9' }] },
  });
  const res = await api('PATCH', `/api/registries/${name}`, { sku: { name: 'Standard' } });
  const error = expectApiError(res, 400, 'SkuNotSupported');
  assert.match(error.message, /Standard/);
  assert.match(error.message, /remove the 2 IP rule\(s\)/);
  assert.match(error.message, /set the default action to Allow/);
  assert.match(error.message, /enable public network access/);
  assert.ok(error.message.includes(PREMIUM_ONLY), error.message);
  const got = await api('GET', `/api/registries/${name}`);
  assert.equal(got.body.sku.name, 'Premium', 'the SKU did not change');
  assert.equal(got.body.properties.networkRuleSet.ipRules.length, 2);

  const basic = await api('PATCH', `/api/registries/${name}`, { sku: { name: 'Basic' } });
  expectApiError(basic, 400, 'SkuNotSupported', /Basic/);
});

test('downgrading together with clearing the rules in one PATCH succeeds', async () => {
  const name = uniqueName('downclear');
  await createRegistry(api, name, 'Premium', {
    publicNetworkAccess: 'Disabled',
    networkRuleSet: { defaultAction: 'Deny', ipRules: [{ value: '203.0.113.0/24' }] },
  });
  const partial = await api('PATCH', `/api/registries/${name}`, {
    sku: { name: 'Standard' },
    properties: { networkRuleSet: { defaultAction: 'Allow', ipRules: [] } },
  });
  const error = expectApiError(partial, 400, 'SkuNotSupported', /enable public network access/);
  assert.doesNotMatch(error.message, /IP rule/, 'only what is still in use is listed');

  const res = await api('PATCH', `/api/registries/${name}`, {
    sku: { name: 'Standard' },
    properties: { publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Allow', ipRules: [] } },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.sku.name, 'Standard');
  assert.deepEqual(res.body.properties.networkRuleSet, { defaultAction: 'Allow', ipRules: [] });
  assert.equal(res.body.properties.publicNetworkAccess, 'Enabled');
});

test('a private endpoint connection blocks a downgrade until it is deleted', async () => {
  const name = uniqueName('downpe');
  await createRegistry(api, name, 'Premium');
  const port = await freePort();
  const pe = await api('PUT', `/api/registries/${name}/privateEndpointConnections/pe1`, {
    properties: { privateEndpoint: { address: `127.0.0.1:${port}` } },
  });
  assert.equal(pe.status, 201, pe.text);
  const res = await api('PATCH', `/api/registries/${name}`, { sku: { name: 'Standard' } });
  expectApiError(res, 400, 'SkuNotSupported', /delete the 1 private endpoint connection\(s\)/);
  // PUT keeps private endpoint connections (they are sub-resources), so a replace is refused too.
  const put = await api('PUT', `/api/registries/${name}`, { sku: { name: 'Basic' } });
  expectApiError(put, 400, 'SkuNotSupported', /private endpoint/);

  assert.equal((await api('DELETE', `/api/registries/${name}/privateEndpointConnections/pe1`)).status, 204);
  const after = await api('PATCH', `/api/registries/${name}`, { sku: { name: 'Standard' } });
  assert.equal(after.status, 200, after.text);
});

test('a full PUT to a lower SKU is refused like PATCH while network features are in use', async () => {
  const name = uniqueName('putdown');
  await createRegistry(api, name, 'Premium', {
    networkRuleSet: { defaultAction: 'Deny', ipRules: [{ value: '192.0.2.0/24' }] },
  });
  for (const sku of ['Basic', 'Standard']) {
    // Omitting the rules in a PUT must not silently open the registry to everyone.
    const res = await api('PUT', `/api/registries/${name}`, { sku: { name: sku } });
    expectApiError(res, 400, 'SkuNotSupported');
    assert.match(res.body.error.message, /remove the 1 IP rule\(s\), set the default action to Allow/);
  }
  const still = await api('GET', `/api/registries/${name}`);
  assert.equal(still.body.sku.name, 'Premium');
  assert.equal(still.body.properties.networkRuleSet.defaultAction, 'Deny');
  // Saying so in the body is a deliberate change, and succeeds.
  const res = await api('PUT', `/api/registries/${name}`, {
    sku: { name: 'Standard' },
    properties: { networkRuleSet: { defaultAction: 'Allow', ipRules: [] } },
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.properties.networkRuleSet, { defaultAction: 'Allow', ipRules: [] });
});

test('upgrading Standard to Premium makes network rules available in the same PATCH', async () => {
  const name = uniqueName('upgrade');
  await createRegistry(api, name, 'Standard');
  const res = await api('PATCH', `/api/registries/${name}`, {
    sku: { name: 'Premium' },
    properties: { networkRuleSet: { defaultAction: 'Deny', ipRules: [{ value: '192.0.2.0/24' }] } },
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.sku, { name: 'Premium', tier: 'Premium' });
  assert.equal(res.body.properties.networkRuleSet.defaultAction, 'Deny');
});
