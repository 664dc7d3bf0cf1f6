// Edits of registries and their IP rules are never lost: ETag / If-Match on the registry resource,
// compare-and-swap in the store, and atomic, idempotent rule operations that keep every rule under
// 50 concurrent writers, hold the SKU's limit under a race, and take effect on the very next request.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_SKU_PLANS } from '../../src/management/skus.js';
import { apiFor, createRegistry, uniqueName } from '../helpers/management.js';
import { send } from '../helpers/net.js';
import { ADMIN_AUTH, startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let limited: TestBerth;
before(async () => {
  berth = await startTestBerth();
  limited = await startTestBerth({
    skus: { ...DEFAULT_SKU_PLANS, Premium: { ...DEFAULT_SKU_PLANS.Premium, maxIpRules: 10 } },
  });
});
after(async () => {
  await berth.stop();
  await limited.stop();
});

interface Answer {
  status: number;
  etag: string | null;
  warning: string | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** A management call with optional extra headers (If-Match), as the owner. */
async function call(
  server: TestBerth,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`${server.managementUrl}${path}`, {
    method,
    headers: {
      Authorization: ADMIN_AUTH,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    etag: res.headers.get('etag'),
    warning: res.headers.get('warning'),
    body: text ? JSON.parse(text) : undefined,
  };
}

const rulesOf = (registry: { properties: { networkRuleSet: { ipRules: { value: string }[] } } }) =>
  registry.properties.networkRuleSet.ipRules.map((r) => r.value).sort();
const addRules = (server: TestBerth, name: string, ...values: string[]) =>
  call(server, 'POST', `/api/registries/${name}/networkRuleSet/ipRules`, {
    ipRules: values.map((value) => ({ action: 'Allow', value })),
  });
const removeRules = (server: TestBerth, name: string, ...values: string[]) =>
  call(server, 'DELETE', `/api/registries/${name}/networkRuleSet/ipRules`, {
    ipRules: values.map((value) => ({ value })),
  });
describe('ETag and If-Match on the registry resource', () => {
  test('GET, PUT and PATCH carry an ETag that changes whenever the record changes', async () => {
    const name = uniqueName('etag');
    const created = await call(berth, 'PUT', `/api/registries/${name}`, { sku: { name: 'Premium' } });
    assert.equal(created.status, 201);
    assert.match(created.etag ?? '', /^"[^"]+"$/);
    const got = await call(berth, 'GET', `/api/registries/${name}`);
    assert.equal(got.etag, created.etag, 'reading does not change the ETag');
    const patched = await call(berth, 'PATCH', `/api/registries/${name}`, {
      properties: { adminUserEnabled: true },
    });
    assert.equal(patched.status, 200);
    assert.notEqual(patched.etag, created.etag);
    assert.equal((await call(berth, 'GET', `/api/registries/${name}`)).etag, patched.etag);
    const put = await call(berth, 'PUT', `/api/registries/${name}`, { sku: { name: 'Premium' } });
    assert.equal(put.status, 200);
    assert.ok(put.etag && put.etag !== patched.etag);
    // A change made by another route (rule operations) moves the ETag too.
    const added = await addRules(berth, name, '10.1.0.0/16');
    assert.ok(added.etag && added.etag !== put.etag);
    assert.equal((await call(berth, 'GET', `/api/registries/${name}`)).etag, added.etag);
  });

  test('a stale If-Match is 412 PreconditionFailed on PUT, PATCH and DELETE, and changes nothing', async () => {
    const name = uniqueName('stale');
    const first = await call(berth, 'PUT', `/api/registries/${name}`, { sku: { name: 'Premium' } });
    const second = await call(berth, 'PATCH', `/api/registries/${name}`, {
      properties: { anonymousPullEnabled: true },
    });
    const stale = { 'If-Match': first.etag! };
    for (const [method, body] of [
      ['PATCH', { properties: { anonymousPullEnabled: false } }],
      ['PUT', { sku: { name: 'Premium' } }],
      ['DELETE', undefined],
    ] as const) {
      const res = await call(berth, method, `/api/registries/${name}`, body, stale);
      assert.equal(res.status, 412, `${method}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'PreconditionFailed');
      assert.match(res.body.error.message, /changed since it was read/);
    }
    const now = await call(berth, 'GET', `/api/registries/${name}`);
    assert.equal(now.etag, second.etag);
    assert.equal(now.body.properties.anonymousPullEnabled, true);
    // The rule operations honour If-Match as well.
    const staleAdd = await call(
      berth,
      'POST',
      `/api/registries/${name}/networkRuleSet/ipRules`,
      { ipRules: [{ value: '10.0.0.1' }] },
      stale,
    );
    assert.equal(staleAdd.status, 412);
  });

  test('a matching If-Match, a list containing it, or * succeeds; DELETE with the current ETag deletes', async () => {
    const name = uniqueName('match');
    const created = await call(berth, 'PUT', `/api/registries/${name}`, { sku: { name: 'Premium' } });
    const one = await call(
      berth,
      'PATCH',
      `/api/registries/${name}`,
      { properties: { adminUserEnabled: true } },
      { 'If-Match': created.etag! },
    );
    assert.equal(one.status, 200);
    const listed = await call(
      berth,
      'PATCH',
      `/api/registries/${name}`,
      { properties: { adminUserEnabled: false } },
      { 'If-Match': `"nope", ${one.etag!}` },
    );
    assert.equal(listed.status, 200);
    const star = await call(
      berth,
      'PATCH',
      `/api/registries/${name}`,
      { properties: { adminUserEnabled: true } },
      { 'If-Match': '*' },
    );
    assert.equal(star.status, 200);
    // A weak tag never matches (If-Match compares strongly).
    const weak = await call(berth, 'DELETE', `/api/registries/${name}`, undefined, {
      'If-Match': `W/${star.etag!}`,
    });
    assert.equal(weak.status, 412);
    const deleted = await call(berth, 'DELETE', `/api/registries/${name}`, undefined, {
      'If-Match': star.etag!,
    });
    assert.equal(deleted.status, 204);
  });

  test('If-Match on a registry that does not exist: PUT is 412 and creates nothing', async () => {
    const name = uniqueName('absent');
    const res = await call(
      berth,
      'PUT',
      `/api/registries/${name}`,
      { sku: { name: 'Premium' } },
      { 'If-Match': '*' },
    );
    assert.equal(res.status, 412);
    assert.equal(res.body.error.code, 'PreconditionFailed');
    assert.equal((await call(berth, 'GET', `/api/registries/${name}`)).status, 404);
  });

  test('a re-created registry does not get the ETag of the one deleted before it', async () => {
    const name = uniqueName('recreate');
    const first = await call(berth, 'PUT', `/api/registries/${name}`, { sku: { name: 'Premium' } });
    await call(berth, 'DELETE', `/api/registries/${name}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
    const again = await call(berth, 'PUT', `/api/registries/${name}`, { sku: { name: 'Premium' } });
    assert.notEqual(again.etag, first.etag);
  });

  test('concurrent PATCHes with the same If-Match: exactly one wins, the rest are 412', async () => {
    const name = uniqueName('race');
    const created = await call(berth, 'PUT', `/api/registries/${name}`, { sku: { name: 'Premium' } });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(
          berth,
          'PATCH',
          `/api/registries/${name}`,
          { properties: { networkRuleSet: { ipRules: [{ value: `10.9.0.${i}` }] } } },
          { 'If-Match': created.etag! },
        ),
      ),
    );
    const won = results.filter((r) => r.status === 200);
    assert.equal(won.length, 1, results.map((r) => r.status).join(','));
    assert.ok(results.every((r) => r.status === 200 || r.status === 412));
    const stored = await call(berth, 'GET', `/api/registries/${name}`);
    assert.deepEqual(rulesOf(stored.body), rulesOf(won[0]!.body));
  });
});

describe('atomic rule operations', () => {
  test('adding an existing rule (any spelling) and removing an absent one succeed and say so', async () => {
    const name = uniqueName('idem');
    await createRegistry(apiFor(berth), name);
    const first = await addRules(berth, name, '10.2.0.0/16', '10.3.0.1');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body.added, ['10.2.0.0/16', '10.3.0.1']);
    assert.deepEqual(first.body.alreadyPresent, []);
    assert.deepEqual(rulesOf(first.body.registry), ['10.2.0.0/16', '10.3.0.1']);

    const again = await addRules(berth, name, '10.2.7.7/16', '10.3.0.1/32');
    assert.equal(again.status, 200);
    assert.deepEqual(again.body.added, []);
    assert.deepEqual(again.body.alreadyPresent, ['10.2.0.0/16', '10.3.0.1']);
    assert.equal(again.etag, first.etag, 'a no-op writes nothing');
    assert.match(again.warning ?? '', /'10\.3\.0\.1\/32' is already present as '10\.3\.0\.1'/);
    assert.match(again.warning ?? '', /host bits/);

    const removed = await removeRules(berth, name, '10.3.0.1/32', '192.0.2.9');
    assert.equal(removed.status, 200);
    assert.deepEqual(removed.body.removed, ['10.3.0.1']);
    assert.deepEqual(removed.body.notPresent, ['192.0.2.9']);
    assert.match(removed.warning ?? '', /'192\.0\.2\.9' was not present/);
    assert.deepEqual(rulesOf(removed.body.registry), ['10.2.0.0/16']);

    const none = await removeRules(berth, name, '192.0.2.9');
    assert.equal(none.status, 200);
    assert.equal(none.etag, removed.etag);
  });

  test('bad input is a 400 naming the offending rule; a Basic registry refuses rules', async () => {
    const name = uniqueName('badops');
    await createRegistry(apiFor(berth), name);
    const bad = await addRules(berth, name, '10.0.0.1', 'not-an-ip');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'InvalidNetworkRule');
    assert.equal(bad.body.error.target, 'ipRules[1].value');
    const empty = await call(berth, 'POST', `/api/registries/${name}/networkRuleSet/ipRules`, {
      ipRules: [],
    });
    assert.equal(empty.status, 400);
    const basicName = uniqueName('basicops');
    await createRegistry(apiFor(berth), basicName, 'Basic');
    const basic = await addRules(berth, basicName, '10.0.0.1');
    assert.equal(basic.status, 400);
    assert.equal(basic.body.error.code, 'SkuNotSupported');
    assert.equal((await addRules(berth, uniqueName('nosuch'), '10.0.0.1')).status, 404);
  });

  test('50 parallel adds and removes keep exactly the expected set', async () => {
    const name = uniqueName('par');
    await createRegistry(apiFor(berth), name);
    const initial = Array.from({ length: 25 }, (_, i) => `10.20.0.${i}`);
    assert.equal((await addRules(berth, name, ...initial)).status, 200);
    const fresh = Array.from({ length: 25 }, (_, i) => `10.21.0.${i}`);
    // 25 removes of existing rules race 25 adds of new ones (one request each).
    const results = await Promise.all([
      ...initial.map((value) => removeRules(berth, name, value)),
      ...fresh.map((value) => addRules(berth, name, value)),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      results.map(() => 200),
    );
    const stored = await call(berth, 'GET', `/api/registries/${name}`);
    assert.deepEqual(rulesOf(stored.body), [...fresh].sort());
    // And 50 adds alone keep all 50.
    const fifty = Array.from({ length: 50 }, (_, i) => `10.22.${Math.floor(i / 10)}.${i}`);
    await Promise.all(fifty.map((value) => addRules(berth, name, value)));
    const after50 = await call(berth, 'GET', `/api/registries/${name}`);
    assert.deepEqual(rulesOf(after50.body), [...fresh, ...fifty].sort());
  });

  test('the SKU limit holds under a race: 30 parallel adds to a 10-rule plan keep exactly 10', async () => {
    const name = uniqueName('limit');
    await createRegistry(apiFor(limited), name);
    const values = Array.from({ length: 30 }, (_, i) => `10.30.0.${i}`);
    const results = await Promise.all(values.map((value) => addRules(limited, name, value)));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 400);
    assert.equal(ok.length, 10);
    assert.equal(refused.length, 20);
    assert.ok(refused.every((r) => r.body.error.code === 'TooManyIpRules'));
    const stored = await call(limited, 'GET', `/api/registries/${name}`);
    assert.equal(rulesOf(stored.body).length, 10);
    assert.deepEqual(rulesOf(stored.body), ok.map((r) => r.body.added[0] as string).sort());
  });

  test('a remove wins over the address on the very next request, even racing other edits', async () => {
    const name = uniqueName('nextreq');
    await createRegistry(apiFor(berth), name, 'Premium', {
      networkRuleSet: { defaultAction: 'Deny', ipRules: [{ action: 'Allow', value: '127.0.0.2' }] },
    });
    const host = { Host: `${name}.localhost`, Authorization: ADMIN_AUTH };
    for (let round = 0; round < 10; round++) {
      if (round > 0) assert.equal((await addRules(berth, name, '127.0.0.2')).status, 200);
      const allowed = await send(berth.url, '/v2/', { from: '127.0.0.2', headers: host });
      assert.equal(allowed.status, 200, `round ${round}: allowed before the remove`);
      const [removed] = await Promise.all([
        removeRules(berth, name, '127.0.0.2'),
        addRules(berth, name, `10.40.0.${round}`),
      ]);
      assert.deepEqual(removed.body.removed, ['127.0.0.2']);
      const denied = await send(berth.url, '/v2/', { from: '127.0.0.2', headers: host });
      assert.equal(denied.status, 403, `round ${round}: the next request after the remove is refused`);
    }
  });
});
