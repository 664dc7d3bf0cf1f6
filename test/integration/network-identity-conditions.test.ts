// Per-identity network conditions: an API key may carry its own address ranges, checked in addition
// to the registry's rules, on the management API and on the data plane's trusted-service bypass; the
// what-if API decides as a named key. (Data-plane sign-in with repository tokens is wired at merge.)

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiFor, createRegistry, dataPlane, uniqueName, type Api } from '../helpers/management.js';
import { api as apiFrom } from '../helpers/net.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
});
after(() => berth.stop());

test('a key limited to 127.0.0.2 works from there and is refused elsewhere on the management API', async () => {
  const created = await api('POST', '/api/apiKeys', {
    name: uniqueName('cikey'),
    role: 'Reader',
    allowedIpRanges: ['127.0.0.2/32', '2001:db8::1/48'],
  });
  assert.equal(created.status, 201, created.text);
  assert.deepEqual(created.body.allowedIpRanges, ['127.0.0.2', '2001:db8::/48']);
  const auth = `Bearer ${created.body.key}`;
  assert.equal(
    (await apiFrom(berth, 'GET', '/api/whoami', undefined, { auth, from: '127.0.0.2' })).status,
    200,
  );
  const refused = await apiFrom(berth, 'GET', '/api/whoami', undefined, { auth, from: '127.0.0.3' });
  assert.equal(refused.status, 403);
  const body = refused.json as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'NetworkAccessDenied');
  assert.match(body.error.message, /may not be used from 127\.0\.0\.3/);
  const listed = await api('GET', '/api/apiKeys');
  const entry = (listed.body.value as { name: string; allowedIpRanges?: string[] }[]).find(
    (k) => k.name === created.body.name,
  );
  assert.deepEqual(entry?.allowedIpRanges, ['127.0.0.2', '2001:db8::/48']);
  const bad = await api('POST', '/api/apiKeys', {
    name: uniqueName('badkey'),
    role: 'Reader',
    allowedIpRanges: ['x'],
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.target, 'allowedIpRanges[0]');
});

test("a trusted-service key bypasses a registry's rules only from its own ranges", async () => {
  const name = uniqueName('idbypass');
  await createRegistry(api, name, 'Premium', {
    networkRuleSet: { defaultAction: 'Deny' },
    networkRuleBypassOptions: 'AzureServices',
  });
  const key = await api('POST', '/api/apiKeys', {
    name: uniqueName('svclimited'),
    role: 'Reader',
    trustedService: true,
    allowedIpRanges: ['127.0.0.2'],
  });
  assert.equal(key.status, 201, key.text);
  const headers = { Authorization: `Bearer ${key.body.key}` };
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/', { headers, from: '127.0.0.2' })).status, 200);
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/', { headers, from: '127.0.0.3' })).status, 403);

  // The what-if API decides as the key and explains the identity condition.
  const inside = await api('POST', `/api/registries/${name}/checkNetworkAccess`, {
    ip: '127.0.0.2',
    apiKey: key.body.name,
  });
  assert.deepEqual(
    { allowed: inside.body.allowed, via: inside.body.via, identityNetwork: inside.body.identityNetwork },
    { allowed: true, via: 'trustedService', identityNetwork: '127.0.0.2' },
  );
  const outside = await api('POST', `/api/registries/${name}/checkNetworkAccess`, {
    ip: '127.0.0.3',
    apiKey: key.body.name,
  });
  assert.deepEqual(
    { allowed: outside.body.allowed, reason: outside.body.reason, identity: outside.body.identity },
    { allowed: false, reason: 'identityNetworkNotAllowed', identity: key.body.name },
  );
  const unknown = await api('POST', `/api/registries/${name}/checkNetworkAccess`, {
    ip: '127.0.0.2',
    apiKey: 'nosuch',
  });
  assert.equal(unknown.status, 404);
});
