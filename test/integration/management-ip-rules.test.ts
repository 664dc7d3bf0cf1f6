import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_SKU_PLANS } from '../../src/management/skus.js';
import { apiFor, createRegistry, expectApiError, uniqueName, type Api } from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let limited: TestBerth;
let api: Api;
let limitedApi: Api;
before(async () => {
  berth = await startTestBerth();
  limited = await startTestBerth({
    skus: { ...DEFAULT_SKU_PLANS, Premium: { ...DEFAULT_SKU_PLANS.Premium, maxIpRules: 3 } },
  });
  api = apiFor(berth);
  limitedApi = apiFor(limited);
});
after(async () => {
  await berth.stop();
  await limited.stop();
});

const rules = (...values: string[]) => ({
  properties: { networkRuleSet: { ipRules: values.map((value) => ({ action: 'Allow', value })) } },
});
const storedRules = (res: { body: { properties: { networkRuleSet: { ipRules: { value: string }[] } } } }) =>
  res.body.properties.networkRuleSet.ipRules.map((r) => r.value);

/** n distinct /32 rules in 10.0.0.0/16. */
const manyRules = (n: number) =>
  Array.from({ length: n }, (_, i) => `10.0.${Math.floor(i / 256)}.${i % 256}`);

test('a range with host bits set is stored as its network, with a Warning header saying so', async () => {
  const name = uniqueName('hostbits');
  await createRegistry(api, name);
  const res = await api('PATCH', `/api/registries/${name}`, rules('192.168.1.77/24', '10.0.0.1'));
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(storedRules(res), ['192.168.1.0/24', '10.0.0.1']);
  const warning = res.headers.get('warning') ?? '';
  assert.match(warning, /^299 /);
  assert.ok(warning.includes('192.168.1.77/24') && warning.includes('192.168.1.0/24'), warning);
  assert.match(warning, /host bits/);

  const clean = await api('PATCH', `/api/registries/${name}`, rules('192.168.1.0/24'));
  assert.equal(clean.headers.get('warning'), null, 'no warning when nothing was changed');

  const created = await api('PUT', `/api/registries/${uniqueName('hostbitsput')}`, {
    sku: { name: 'Premium' },
    ...rules('2001:db8::1/32'),
  });
  assert.equal(created.status, 201, created.text);
  assert.deepEqual(storedRules(created), ['2001:db8::/32']);
  assert.match(created.headers.get('warning') ?? '', /2001:db8::1\/32/);
});

test('IPv6 rules are stored in canonical form; IPv4-mapped IPv6 becomes IPv4', async () => {
  const name = uniqueName('canon');
  await createRegistry(api, name);
  const res = await api(
    'PATCH',
    `/api/registries/${name}`,
    rules(
      '2001:0DB8:0000:0000:0000:0000:0000:0001',
      'FE80:0:0:0::/64',
      '::ffff:1.2.3.4',
      '::ffff:198.51.100.0/120',
      '0:0:0:0:0:0:0:1',
    ),
  );
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(storedRules(res), ['2001:db8::1', 'fe80::/64', '1.2.3.4', '198.51.100.0/24', '::1']);
  const got = await api('GET', `/api/registries/${name}`);
  assert.deepEqual(storedRules(got), storedRules(res));
});

for (const [bad, why] of [
  ['300.1.1.1', /out of range/],
  ['1.2.3.4/33', /prefix length/],
  ['010.1.1.1', /leading zero/],
  ['', /empty/],
  ['example.com', /hostname/],
  ['fe80::1%eth0', /zone/],
  ['1.2.3', /four decimal octets/],
  [' 1.2.3.4', /whitespace/],
  ['1.2.3.4/024', /leading zeros/],
  ['2001:db8::/129', /prefix length/],
  ['1::2::3', /'::'/],
] as const) {
  test(`IP rule ${JSON.stringify(bad)} is 400 InvalidNetworkRule naming the value`, async () => {
    const name = uniqueName('badrule');
    await createRegistry(api, name, 'Premium', rules('203.0.113.0/24').properties);
    const res = await api('PATCH', `/api/registries/${name}`, rules('198.51.100.1', bad));
    const error = expectApiError(res, 400, 'InvalidNetworkRule', `'${bad}'`);
    assert.match(error.message, why);
    assert.equal(error.target, 'properties.networkRuleSet.ipRules[1].value');
    const got = await api('GET', `/api/registries/${name}`);
    assert.deepEqual(storedRules(got), ['203.0.113.0/24'], 'the registry was left as it was');
  });
}

test('duplicate rules are rejected, including two spellings of one range', async () => {
  const name = uniqueName('dupes');
  await createRegistry(api, name);
  const same = await api('PATCH', `/api/registries/${name}`, rules('1.2.3.4', '5.6.7.8', '1.2.3.4'));
  const error = expectApiError(same, 400, 'InvalidNetworkRule', "'1.2.3.4'");
  assert.match(error.message, /duplicates/);
  const spelled = await api('PATCH', `/api/registries/${name}`, rules('10.0.0.0/8', '10.9.9.9/8'));
  expectApiError(spelled, 400, 'InvalidNetworkRule', /'10\.9\.9\.9\/8' duplicates the rule '10\.0\.0\.0\/8'/);
  const mapped = await api('PATCH', `/api/registries/${name}`, rules('1.2.3.4', '::ffff:1.2.3.4'));
  expectApiError(mapped, 400, 'InvalidNetworkRule', '::ffff:1.2.3.4');
  const v6 = await api('PATCH', `/api/registries/${name}`, rules('2001:db8::1', '2001:DB8:0::1'));
  expectApiError(v6, 400, 'InvalidNetworkRule', '2001:DB8:0::1');
});

test('Premium allows exactly 100 IP rules; the 101st is 400 TooManyIpRules naming the limit', async () => {
  const name = uniqueName('hundred');
  await createRegistry(api, name);
  const ok = await api('PATCH', `/api/registries/${name}`, rules(...manyRules(100)));
  assert.equal(ok.status, 200, ok.text);
  assert.equal(storedRules(ok).length, 100);

  const tooMany = await api('PATCH', `/api/registries/${name}`, rules(...manyRules(101)));
  const error = expectApiError(tooMany, 400, 'TooManyIpRules', /at most 100 IP rules/);
  assert.match(error.message, /101/);
  const got = await api('GET', `/api/registries/${name}`);
  assert.equal(storedRules(got).length, 100, 'the 100 rules are still there');

  const onCreate = await api('PUT', `/api/registries/${uniqueName('hundredput')}`, {
    sku: { name: 'Premium' },
    ...rules(...manyRules(101)),
  });
  expectApiError(onCreate, 400, 'TooManyIpRules', '100');
});

test('an operator-lowered limit (maxIpRules: 3) is enforced: the 4th rule fails', async () => {
  const name = uniqueName('three');
  await createRegistry(limitedApi, name);
  const ok = await limitedApi('PATCH', `/api/registries/${name}`, rules(...manyRules(3)));
  assert.equal(ok.status, 200, ok.text);
  const four = await limitedApi('PATCH', `/api/registries/${name}`, rules(...manyRules(4)));
  expectApiError(four, 400, 'TooManyIpRules', /at most 3 IP rules/);
  // The default server is unaffected by the other server's configuration.
  const other = uniqueName('notthree');
  await createRegistry(api, other);
  assert.equal((await api('PATCH', `/api/registries/${other}`, rules(...manyRules(4)))).status, 200);
});

test('a registry left above a limit the operator lowered later can still be edited, but not grow', async () => {
  const name = uniqueName('lowered');
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-lowered-'));
  const first = await startTestBerth({ dataDir });
  try {
    await createRegistry(apiFor(first), name);
    const five = await apiFor(first)('PATCH', `/api/registries/${name}`, rules(...manyRules(5)));
    assert.equal(five.status, 200, five.text);
  } finally {
    await first.stop();
  }
  const lowered = await startTestBerth({
    dataDir,
    skus: { ...DEFAULT_SKU_PLANS, Premium: { ...DEFAULT_SKU_PLANS.Premium, maxIpRules: 3 } },
  });
  try {
    const loweredApi = apiFor(lowered);
    const unrelated = await loweredApi('PATCH', `/api/registries/${name}`, {
      properties: { networkRuleSet: { defaultAction: 'Deny' } },
    });
    assert.equal(unrelated.status, 200, unrelated.text);
    const shrink = await loweredApi('PATCH', `/api/registries/${name}`, rules(...manyRules(4)));
    assert.equal(shrink.status, 200, shrink.text);
    assert.equal(storedRules(shrink).length, 4);
    const grow = await loweredApi('PATCH', `/api/registries/${name}`, rules(...manyRules(5)));
    expectApiError(grow, 400, 'TooManyIpRules', /at most 3 IP rules/);
  } finally {
    await lowered.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
