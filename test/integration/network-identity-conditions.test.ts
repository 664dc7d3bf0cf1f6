// Per-identity network conditions: an API key or a repository-scoped token may carry its own address
// ranges, checked in addition to the registry's rules: on the management API, the data plane's
// trusted-service bypass, Basic sign-in to /v2/ and /oauth2/token, and every use of a Bearer JWT minted
// for it (with the ranges as they are now). The what-if API decides as a named key.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bearerToken, errorCode, fetchToken, tokenForm, tokenRequest } from '../helpers/auth.js';
import {
  apiFor,
  basic,
  createRegistry,
  dataPlane,
  pushImageTo,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import type { RawResponse } from '../helpers/oci.js';
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

/** The OCI error code and `detail.reason` of a refusal. */
function refusal(res: RawResponse): { status: number; code: string | undefined; reason: unknown } {
  let reason: unknown;
  try {
    reason = (JSON.parse(res.body.toString()) as { errors?: { detail?: { reason?: unknown } }[] }).errors?.[0]
      ?.detail?.reason;
  } catch {
    reason = undefined;
  }
  return { status: res.status, code: errorCode(res), reason };
}

const DENIED = { status: 403, code: 'DENIED', reason: 'identityNetworkNotAllowed' };

test('a token limited to 127.0.0.2 signs in from there only, and its JWTs work from there only', async () => {
  const reg = uniqueName('idtok');
  await createRegistry(api, reg, 'Premium');
  await pushImageTo(berth, reg, 'app', 'v1');
  const name = uniqueName('citok');
  const bad = await api('PUT', `/api/registries/${reg}/tokens/${name}`, {
    properties: { scopeMapId: '_repositories_pull', allowedIpRanges: ['127.0.0.2/32', 'nonsense'] },
  });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.body.error.code, 'InvalidNetworkRule');
  assert.equal(bad.body.error.target, 'properties.allowedIpRanges[1]');
  const created = await api('PUT', `/api/registries/${reg}/tokens/${name}`, {
    properties: { scopeMapId: '_repositories_pull', allowedIpRanges: ['127.0.0.2/32'] },
  });
  assert.equal(created.status, 201, created.text);
  assert.deepEqual(created.body.properties.allowedIpRanges, ['127.0.0.2']);
  const shown = await api('GET', `/api/registries/${reg}/tokens/${name}`);
  assert.deepEqual(shown.body.properties.allowedIpRanges, ['127.0.0.2']);
  const generated = await api('POST', `/api/registries/${reg}/generateCredentials`, { tokenId: name });
  assert.equal(generated.status, 200, generated.text);
  const password = generated.body.passwords[0].value as string;
  const auth = { Authorization: basic(name, password) };
  const manifest = (from: string, headers: Record<string, string>) =>
    dataPlane(berth, reg, 'GET', '/v2/app/manifests/v1', { headers, from });

  // Basic sign-in: /v2/ and both token endpoints.
  assert.equal(
    (await dataPlane(berth, reg, 'GET', '/v2/', { headers: auth, from: '127.0.0.2' })).status,
    200,
  );
  assert.deepEqual(
    refusal(await dataPlane(berth, reg, 'GET', '/v2/', { headers: auth, from: '127.0.0.3' })),
    DENIED,
  );
  const scope = ['repository:app:pull'];
  assert.equal((await tokenRequest(berth, reg, scope, basic(name, password), '127.0.0.2')).status, 200);
  assert.deepEqual(
    refusal(await tokenRequest(berth, reg, scope, basic(name, password), '127.0.0.3')),
    DENIED,
  );
  const form = { grant_type: 'password', username: name, password, service: `${reg}.localhost`, scope };
  assert.equal((await tokenForm(berth, reg, form, '127.0.0.2')).status, 200);
  assert.deepEqual(refusal(await tokenForm(berth, reg, form, '127.0.0.3')), DENIED);

  // A JWT minted at .2 is refused at .3: a leaked one is useless off the CI network.
  const jwt = {
    Authorization: bearerToken((await fetchToken(berth, reg, name, password, scope, '127.0.0.2')).token),
  };
  assert.equal((await manifest('127.0.0.2', jwt)).status, 200);
  assert.deepEqual(refusal(await manifest('127.0.0.3', jwt)), DENIED);

  // Changing the ranges applies to the next request, JWTs already out there included.
  const moved = await api('PATCH', `/api/registries/${reg}/tokens/${name}`, {
    properties: { allowedIpRanges: ['127.0.0.3'] },
  });
  assert.equal(moved.status, 200, moved.text);
  assert.deepEqual(moved.body.properties.allowedIpRanges, ['127.0.0.3']);
  assert.equal(moved.body.properties.status, 'enabled');
  assert.equal((await manifest('127.0.0.3', jwt)).status, 200);
  assert.deepEqual(refusal(await manifest('127.0.0.2', jwt)), DENIED);
  assert.deepEqual(
    refusal(await dataPlane(berth, reg, 'GET', '/v2/', { headers: auth, from: '127.0.0.2' })),
    DENIED,
  );

  // An empty list removes the condition.
  const cleared = await api('PATCH', `/api/registries/${reg}/tokens/${name}`, {
    properties: { allowedIpRanges: [] },
  });
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal(cleared.body.properties.allowedIpRanges, undefined);
  assert.equal((await manifest('127.0.0.2', jwt)).status, 200);
  assert.equal((await manifest('127.0.0.3', auth)).status, 200);

  // A deleted token's JWTs are refused (not let through without its ranges).
  assert.equal((await api('DELETE', `/api/registries/${reg}/tokens/${name}`)).status, 204);
  const gone = await manifest('127.0.0.3', jwt);
  assert.equal(gone.status, 401);
  assert.equal(errorCode(gone), 'UNAUTHORIZED');
});

test("an API key's JWT minted inside its ranges is refused outside them", async () => {
  const reg = uniqueName('idkey');
  await createRegistry(api, reg, 'Premium');
  await pushImageTo(berth, reg, 'app', 'v1');
  const created = await api('POST', '/api/apiKeys', {
    name: uniqueName('cipull'),
    role: 'Reader',
    registry: reg,
    allowedIpRanges: ['127.0.0.2'],
  });
  assert.equal(created.status, 201, created.text);
  const key = created.body.key as string;
  const scope = ['repository:app:pull'];
  assert.deepEqual(refusal(await tokenRequest(berth, reg, scope, basic('ci', key), '127.0.0.3')), DENIED);
  const jwt = {
    Authorization: bearerToken((await fetchToken(berth, reg, 'ci', key, scope, '127.0.0.2')).token),
  };
  const manifest = (from: string) =>
    dataPlane(berth, reg, 'GET', '/v2/app/manifests/v1', { headers: jwt, from });
  assert.equal((await manifest('127.0.0.2')).status, 200);
  assert.deepEqual(refusal(await manifest('127.0.0.3')), DENIED);
  // Once the key is deleted its JWTs are refused everywhere, not let through without its ranges.
  assert.equal((await api('DELETE', `/api/apiKeys/${created.body.id}`)).status, 204);
  assert.equal((await manifest('127.0.0.3')).status, 401);
  assert.equal((await manifest('127.0.0.2')).status, 401);
});
