// The management API is not behind the registry's network rules, except the repository and tag views,
// which (as in ACR) obey them for the caller's own address.

import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { api, openNetwork, setNetwork } from '../helpers/net.js';
import { pushImage } from '../helpers/oci.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth();
  await pushImage(berth.url, 'team/app', 'v1');
  await pushImage(berth.url, 'team/tool', 'v2');
});
after(() => berth.stop());
beforeEach(() => openNetwork(berth));

const REPOS = '/api/registries/default/repositories';

function networkDenied(res: { status: number; json: unknown; text: string }, reason: string): void {
  assert.equal(res.status, 403, res.text);
  const error = (res.json as { error: { code: string; message: string; target?: string } }).error;
  assert.equal(error.code, 'NetworkAccessDenied');
  assert.equal(error.target, reason);
  assert.match(error.message, /^client with IP '127\.0\.0\.3' is not allowed access\./);
}

test('repository and tag views answer the allowed address and refuse another', async () => {
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.2'] });
  const allowed = await api(berth, 'GET', REPOS, undefined, { from: '127.0.0.2' });
  assert.equal(allowed.status, 200, allowed.text);
  assert.deepEqual((allowed.json as { value: string[] }).value, ['team/app', 'team/tool']);
  const tags = await api(berth, 'GET', `${REPOS}/team%2Fapp/tags`, undefined, { from: '127.0.0.2' });
  assert.equal(tags.status, 200, tags.text);
  assert.deepEqual(
    (tags.json as { value: { name: string }[] }).value.map((t) => t.name),
    ['v1'],
  );

  const from3 = { from: '127.0.0.3' };
  networkDenied(await api(berth, 'GET', REPOS, undefined, from3), 'ipNotAllowed');
  networkDenied(await api(berth, 'GET', `${REPOS}/team%2Fapp`, undefined, from3), 'ipNotAllowed');
  networkDenied(await api(berth, 'GET', `${REPOS}/team%2Fapp/tags`, undefined, from3), 'ipNotAllowed');
  networkDenied(await api(berth, 'DELETE', `${REPOS}/team%2Ftool`, undefined, from3), 'ipNotAllowed');
  networkDenied(await api(berth, 'DELETE', `${REPOS}/team%2Ftool/tags/v2`, undefined, from3), 'ipNotAllowed');
  // The refused deletes changed nothing.
  const still = await api(berth, 'GET', REPOS, undefined, { from: '127.0.0.2' });
  assert.deepEqual((still.json as { value: string[] }).value, ['team/app', 'team/tool']);
});

test('the rest of the management API is not subject to the rules', async () => {
  await setNetwork(berth, { publicNetworkAccess: 'Disabled', defaultAction: 'Deny', ipRules: [] });
  const from3 = { from: '127.0.0.3' };
  const registry = await api(berth, 'GET', '/api/registries/default', undefined, from3);
  assert.equal(registry.status, 200, registry.text);
  const check = await api(
    berth,
    'POST',
    '/api/registries/default/checkNetworkAccess',
    { ip: '127.0.0.3' },
    from3,
  );
  assert.equal(check.status, 200, check.text);
  assert.equal((check.json as { allowed: boolean }).allowed, false);
  // ... so the owner can always repair the rules from wherever they are.
  const repaired = await api(
    berth,
    'PATCH',
    '/api/registries/default',
    { properties: { publicNetworkAccess: 'Enabled', networkRuleSet: { ipRules: [{ value: '127.0.0.3' }] } } },
    from3,
  );
  assert.equal(repaired.status, 200, repaired.text);
  assert.equal((await api(berth, 'GET', REPOS, undefined, from3)).status, 200);
});

test('public access Disabled refuses the listing even for an address with a rule', async () => {
  await setNetwork(berth, { publicNetworkAccess: 'Disabled', defaultAction: 'Deny', ipRules: ['127.0.0.3'] });
  networkDenied(
    await api(berth, 'GET', REPOS, undefined, { from: '127.0.0.3' }),
    'publicNetworkAccessDisabled',
  );
});

test('a rule change applies to the next listing at once', async () => {
  const from3 = { from: '127.0.0.3' };
  assert.equal((await api(berth, 'GET', REPOS, undefined, from3)).status, 200);
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.0/31'] });
  networkDenied(await api(berth, 'GET', REPOS, undefined, from3), 'ipNotAllowed');
  await setNetwork(berth, { ipRules: ['127.0.0.0/30'] });
  assert.equal((await api(berth, 'GET', REPOS, undefined, from3)).status, 200);
});
