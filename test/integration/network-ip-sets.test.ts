// Named IP sets over real sockets: one set named by two registries' rules; changing the set changes
// both at once; the what-if API names the set; a set in use cannot be deleted; unknown sets are refused.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiFor, createRegistry, uniqueName, type Api } from '../helpers/management.js';
import { expectDenied, send } from '../helpers/net.js';
import { ADMIN_AUTH, startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
});
after(() => berth.stop());

const get = (registry: string, from: string) =>
  send(berth.url, '/v2/', { from, headers: { Host: `${registry}.localhost`, Authorization: ADMIN_AUTH } });

test('a set named by two registries: changing it changes both at once', async () => {
  const created = await api('PUT', '/api/ipSets/office', { ranges: ['127.0.0.2/32'], description: 'HQ' });
  assert.equal(created.status, 201, created.text);
  assert.deepEqual(created.body.properties.ranges, ['127.0.0.2']);
  assert.match(created.headers.get('etag') ?? '', /^"/);
  const a = uniqueName('seta');
  const b = uniqueName('setb');
  await createRegistry(api, a, 'Premium', { networkRuleSet: { defaultAction: 'Deny' } });
  await createRegistry(api, b, 'Premium', {
    networkRuleSet: { defaultAction: 'Deny', ipRules: [{ ipSet: 'office', actions: 'pull' }] },
  });
  const added = await api('POST', `/api/registries/${a}/networkRuleSet/ipRules`, {
    ipRules: [{ ipSet: 'office' }],
  });
  assert.equal(added.status, 200, added.text);
  assert.deepEqual(added.body.added, ['ipSet:office']);
  for (const registry of [a, b]) {
    assert.equal((await get(registry, '127.0.0.2')).status, 200, registry);
    expectDenied(await get(registry, '127.0.0.3'), '127.0.0.3', 'ipNotAllowed');
  }
  const why = await api('POST', `/api/registries/${b}/checkNetworkAccess`, { ip: '127.0.0.2' });
  assert.deepEqual(
    {
      via: why.body.via,
      rule: why.body.matchedRule,
      set: why.body.matchedIpSet,
      actions: why.body.matchedRuleActions,
    },
    { via: 'ipRule', rule: '127.0.0.2', set: 'office', actions: 'pull' },
  );

  // One change to the set; the very next request to either registry sees it.
  const stale = created.headers.get('etag')!;
  const moved = await api('PUT', '/api/ipSets/office', { ranges: ['127.0.0.3'] });
  assert.equal(moved.status, 200, moved.text);
  assert.equal(moved.body.properties.description, 'HQ', 'the description is kept when not given');
  for (const registry of [a, b]) {
    expectDenied(await get(registry, '127.0.0.2'), '127.0.0.2', 'ipNotAllowed');
    assert.equal((await get(registry, '127.0.0.3')).status, 200, registry);
  }
  // A stale If-Match on the set is 412.
  const res = await fetch(`${berth.managementUrl}/api/ipSets/office`, {
    method: 'PUT',
    headers: { Authorization: ADMIN_AUTH, 'Content-Type': 'application/json', 'If-Match': stale },
    body: JSON.stringify({ ranges: ['127.0.0.9'] }),
  });
  assert.equal(res.status, 412);

  // In use: not deletable, and the answer names the registries.
  const refused = await api('DELETE', '/api/ipSets/office');
  assert.equal(refused.status, 409);
  assert.ok(refused.body.error.message.includes(a) && refused.body.error.message.includes(b));
  for (const registry of [a, b]) {
    const removed = await api('DELETE', `/api/registries/${registry}/networkRuleSet/ipRules`, {
      ipRules: [{ ipSet: 'office' }],
    });
    assert.deepEqual(removed.body.removed, ['ipSet:office']);
  }
  assert.equal((await api('DELETE', '/api/ipSets/office')).status, 204);
  assert.equal((await api('GET', '/api/ipSets/office')).status, 404);
});

test('bad sets and rules naming unknown sets are 400s; writing a set needs a role on every registry', async () => {
  const bad = await api('PUT', '/api/ipSets/broken', { ranges: ['10.0.0.0/8', 'nope'] });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'InvalidNetworkRule');
  assert.equal(bad.body.error.target, 'ranges[1]');
  assert.equal((await api('PUT', '/api/ipSets/Upper', { ranges: [] })).status, 400);
  const name = uniqueName('setless');
  await createRegistry(api, name);
  const unknown = await api('POST', `/api/registries/${name}/networkRuleSet/ipRules`, {
    ipRules: [{ ipSet: 'nosuch' }],
  });
  assert.equal(unknown.status, 400);
  assert.match(unknown.body.error.message, /no IP set named 'nosuch'/);
  const patched = await api('PATCH', `/api/registries/${name}`, {
    properties: { networkRuleSet: { ipRules: [{ ipSet: 'nosuch' }] } },
  });
  assert.equal(patched.status, 400);
  const key = await api('POST', '/api/apiKeys', {
    name: uniqueName('setkey'),
    role: 'Owner',
    registry: name,
  });
  assert.equal(key.status, 201, key.text);
  const asOwner = await api('PUT', '/api/ipSets/mine', { ranges: ['10.0.0.1'] }, `Bearer ${key.body.key}`);
  assert.equal(asOwner.status, 403);
  assert.equal((await api('GET', '/api/ipSets', undefined, `Bearer ${key.body.key}`)).status, 200);
});
