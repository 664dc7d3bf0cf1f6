import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiFor,
  assertArmError,
  createRegistry,
  expectApiError,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { ADMIN_AUTH, startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
let existing: string;
before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
  existing = uniqueName('valid');
  await createRegistry(api, existing, 'Premium');
});
after(async () => {
  await berth.stop();
});

const premium = { sku: { name: 'Premium' } };

for (const [label, name] of [
  ['4 characters', 'abcd'],
  ['51 characters', 'a'.repeat(51)],
  ['a hyphen', 'my-reg'],
  ['an underscore', 'my_reg'],
  ['a dot', 'my.registry'],
  ['non-ASCII letters', 'régistry'],
] as const) {
  test(`PUT with a registry name of ${label} is 400 InvalidRegistryName and creates nothing`, async () => {
    const res = await api('PUT', `/api/registries/${encodeURIComponent(name)}`, premium);
    const error = expectApiError(res, 400, 'InvalidRegistryName', /5-50 letters and digits/);
    assert.ok(error.message.includes(name), error.message);
    const list = await api('GET', '/api/registries');
    assert.ok(!list.body.value.some((r: { name: string }) => r.name === name.toLowerCase()));
  });
}

test('names of exactly 5 and 50 alphanumerics are accepted', async () => {
  const five = `a${uniqueName('').slice(-4)}`.slice(0, 5);
  assert.equal(five.length, 5);
  await createRegistry(api, five, 'Basic');
  const fifty = `${uniqueName('b')}${'9'.repeat(50)}`.slice(0, 50);
  await createRegistry(api, fifty, 'Basic');
});

test('an unknown top-level property is 400 InvalidRequestContent naming it', async () => {
  const name = uniqueName('unknown');
  const res = await api('PUT', `/api/registries/${name}`, { ...premium, color: 'blue' });
  const error = expectApiError(res, 400, 'InvalidRequestContent', "'color'");
  assert.match(error.target ?? '', /color/);
  expectApiError(await api('GET', `/api/registries/${name}`), 404, 'ResourceNotFound');
});

test('unknown nested properties are 400 InvalidRequestContent naming the property and where', async () => {
  const cases: [object, string, RegExp][] = [
    [{ properties: { adminUserEnabld: true } }, 'adminUserEnabld', /properties/],
    [{ properties: { networkRuleSet: { defaultActon: 'Deny' } } }, 'defaultActon', /networkRuleSet/],
    [{ properties: { networkRuleSet: { ipRules: [{ value: '1.2.3.4', note: 'x' }] } } }, 'note', /ipRules/],
    [{ sku: { name: 'Premium', size: 'L' } }, 'size', /sku/],
  ];
  for (const [body, property, where] of cases) {
    const res = await api('PATCH', `/api/registries/${existing}`, body);
    const error = expectApiError(res, 400, 'InvalidRequestContent', `'${property}'`);
    assert.match(error.message, where);
  }
  const got = await api('GET', `/api/registries/${existing}`);
  assert.equal(got.body.properties.adminUserEnabled, false, 'nothing was applied');
});

test('values outside an enum are 400 InvalidRequestContent listing the allowed values', async () => {
  const deny = await api('PATCH', `/api/registries/${existing}`, {
    properties: { networkRuleSet: { defaultAction: 'Maybe' } },
  });
  expectApiError(deny, 400, 'InvalidRequestContent', /defaultAction.*Allow, Deny/);
  const gold = await api('PUT', `/api/registries/${uniqueName('gold')}`, { sku: { name: 'Gold' } });
  expectApiError(gold, 400, 'InvalidRequestContent', /sku\.name.*Basic, Standard, Premium/);
  const pna = await api('PATCH', `/api/registries/${existing}`, {
    properties: { publicNetworkAccess: 'Off' },
  });
  expectApiError(pna, 400, 'InvalidRequestContent', /publicNetworkAccess/);
  const action = await api('PATCH', `/api/registries/${existing}`, {
    properties: { networkRuleSet: { ipRules: [{ action: 'Deny', value: '1.2.3.4' }] } },
  });
  expectApiError(action, 400, 'InvalidRequestContent', /action/);
});

test('wrong types are 400 InvalidRequestContent: no coercion of "yes", "1" or numbers', async () => {
  const cases: object[] = [
    { properties: { adminUserEnabled: 'yes' } },
    { properties: { adminUserEnabled: 1 } },
    { properties: { anonymousPullEnabled: 'true' } },
    { properties: { networkRuleSet: { ipRules: '1.2.3.4' } } },
    { properties: { networkRuleSet: { ipRules: [{ value: 1234 }] } } },
    { properties: { networkRuleSet: { ipRules: ['1.2.3.4'] } } },
    { properties: 'all' },
    { sku: 'Premium' },
  ];
  for (const body of cases) {
    const res = await api('PATCH', `/api/registries/${existing}`, body);
    expectApiError(res, 400, 'InvalidRequestContent');
  }
  const adminYes = await api('PATCH', `/api/registries/${existing}`, {
    properties: { adminUserEnabled: 'yes' },
  });
  assert.match(adminYes.body.error.message, /adminUserEnabled.*boolean/);
  const got = await api('GET', `/api/registries/${existing}`);
  assert.equal(got.body.properties.adminUserEnabled, false);
});

test('a body that is not a JSON object, or not JSON at all, is 400 InvalidRequestContent', async () => {
  for (const raw of ['{"sku": {"name": "Premium"', 'not json', '[]', 'null', '"Premium"', '42']) {
    const res = await api('PUT', `/api/registries/${uniqueName('badjson')}`, raw);
    expectApiError(res, 400, 'InvalidRequestContent');
  }
});

test('PUT without sku is 400 InvalidRequestContent naming sku, and creates nothing', async () => {
  const name = uniqueName('nosku');
  const res = await api('PUT', `/api/registries/${name}`, { properties: { adminUserEnabled: true } });
  const error = expectApiError(res, 400, 'InvalidRequestContent', "'sku'");
  assert.equal(error.target, 'sku');
  expectApiError(await api('GET', `/api/registries/${name}`), 404, 'ResourceNotFound');
  const noName = await api('PUT', `/api/registries/${name}`, { sku: {} });
  expectApiError(noName, 400, 'InvalidRequestContent', /name/);
});

test('virtualNetworkRules are accepted only when empty (Berth has no virtual networks)', async () => {
  const ok = await api('PATCH', `/api/registries/${existing}`, {
    properties: { networkRuleSet: { virtualNetworkRules: [] } },
  });
  assert.equal(ok.status, 200, ok.text);
  const bad = await api('PATCH', `/api/registries/${existing}`, {
    properties: { networkRuleSet: { virtualNetworkRules: [{ id: 'x' }] } },
  });
  expectApiError(bad, 400, 'InvalidRequestContent', /virtualNetworkRules/);
});

test('regenerateCredential validates its body', async () => {
  for (const body of [{}, { name: 'password3' }, { name: 'password', extra: 1 }]) {
    const res = await api('POST', `/api/registries/${existing}/regenerateCredential`, body);
    expectApiError(res, 400, 'InvalidRequestContent');
  }
});

test('no malformed input produces a 500: every error has the ARM shape', async () => {
  const name = uniqueName('fuzz');
  await createRegistry(api, name, 'Premium');
  const bodies: unknown[] = [
    '{',
    '{"properties":{"networkRuleSet":{"ipRules":[{"value":"1.2.3.4"},{}]}}}',
    { properties: { networkRuleSet: { ipRules: [{ value: 'x'.repeat(10_000) }] } } },
    { properties: { networkRuleSet: { ipRules: [{ value: '\u0000' }] } } },
    { properties: { networkRuleSet: { ipRules: [{ value: '::ffff:999.1.1.1' }] } } },
    { properties: { networkRuleSet: { ipRules: [{ value: '1.2.3.4/' }] } } },
    { properties: { networkRuleSet: { ipRules: [{ value: '/24' }] } } },
    { properties: { networkRuleSet: { ipRules: [{ value: ':::' }] } } },
    { properties: { networkRuleSet: { ipRules: [{ value: '1:2:3:4:5:6:7:8:9' }] } } },
    { properties: { networkRuleSet: null } },
    { properties: { networkRuleSet: { ipRules: null } } },
    { sku: { name: null } },
    { __proto__: { polluted: true }, sku: { name: 'Premium' } },
    { constructor: { prototype: { polluted: true } } },
    JSON.stringify({ sku: { name: 'Premium' } }).repeat(2),
  ];
  for (const body of bodies) {
    for (const method of ['PUT', 'PATCH']) {
      const res = await api(method, `/api/registries/${name}`, body);
      assert.ok(res.status < 500, `${method} ${JSON.stringify(body).slice(0, 80)} gave ${res.status}`);
      if (res.status >= 400) assertArmError(res.body);
    }
  }
  const paths = [
    `/api/registries/${'x'.repeat(300)}`,
    `/api/registries/${name}/repositories/${'%ZZ'}`,
    `/api/registries/%00/endpoints`,
    `/api/registries/${name}/networkDenials?since=yesterday`,
    `/api/registries/${name}/networkDenials?limit=-1`,
    `/api/registries/${name}/networkDenials?bogus=1`,
    `/api/registries/${name}/repositories?n=abc`,
  ];
  for (const path of paths) {
    const res = await api('GET', path);
    assert.ok(res.status >= 400 && res.status < 500, `GET ${path} gave ${res.status}: ${res.text}`);
    assertArmError(res.body);
  }
  // A content type the API does not take is a client error too, with the same body shape.
  const text = await fetch(`${berth.managementUrl}/api/registries/${name}`, {
    method: 'PATCH',
    headers: { Authorization: ADMIN_AUTH, 'Content-Type': 'text/plain' },
    body: 'sku=Premium',
  });
  assert.ok(text.status >= 400 && text.status < 500, String(text.status));
  assertArmError(await text.json());
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
