// The rule kinds beyond ACR, end to end over real sockets from chosen loopback addresses: rules that
// expire (a real, short expiry), pull-only rules, report-only mode; and the what-if API explaining each.

import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { apiFor } from '../helpers/management.js';
import { denials, expectDenied, openNetwork, send, setNetwork } from '../helpers/net.js';
import { ADMIN_AUTH, startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth();
});
after(() => berth.stop());
beforeEach(() => openNetwork(berth));

const auth = { Authorization: ADMIN_AUTH };
const addRule = (rule: Record<string, unknown>) =>
  apiFor(berth)('POST', '/api/registries/default/networkRuleSet/ipRules', { ipRules: [rule] });
const check = (ip: string, action?: 'pull' | 'push') =>
  apiFor(berth)('POST', '/api/registries/default/checkNetworkAccess', { ip, ...(action ? { action } : {}) });

test('an expiring rule admits its address until its instant, then stops, and is reported as expired', async () => {
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.1'] });
  const expiresAt = new Date(Date.now() + 1_500).toISOString();
  const added = await addRule({ value: '127.0.0.2', expiresAt });
  assert.equal(added.status, 200, added.text);
  assert.deepEqual(added.body.added, ['127.0.0.2']);
  assert.equal((await send(berth.url, '/v2/', { from: '127.0.0.2', headers: auth })).status, 200);
  const before = await check('127.0.0.2');
  assert.equal(before.body.matchedRule, '127.0.0.2');
  assert.equal(before.body.matchedRuleExpiresAt, expiresAt);
  // A request held open across the instant is not needed: the next one after it is refused.
  await sleep(Math.max(0, Date.parse(expiresAt) - Date.now()) + 50);
  expectDenied(
    await send(berth.url, '/v2/', { from: '127.0.0.2', headers: auth }),
    '127.0.0.2',
    'ipNotAllowed',
  );
  const afterwards = await check('127.0.0.2');
  assert.equal(afterwards.body.allowed, false);
  assert.deepEqual(afterwards.body.expiredRules, [{ value: '127.0.0.2', expiresAt }]);
  const shown = await apiFor(berth)('GET', '/api/registries/default');
  const rule = (shown.body.properties.networkRuleSet.ipRules as { value: string }[]).find(
    (r) => r.value === '127.0.0.2',
  );
  assert.deepEqual(rule, { action: 'Allow', value: '127.0.0.2', expiresAt, expired: true });
  // Re-adding it with a new expiry updates it in place (a CI runner's next job).
  const renewed = await addRule({
    value: '127.0.0.2',
    expiresAt: new Date(Date.now() + 60_000).toISOString(),
  });
  assert.deepEqual(renewed.body.updated, ['127.0.0.2']);
  assert.equal((await send(berth.url, '/v2/', { from: '127.0.0.2', headers: auth })).status, 200);
  // An expiry in the past is refused.
  const past = await addRule({ value: '127.0.0.9', expiresAt: '2020-01-01T00:00:00Z' });
  assert.equal(past.status, 400);
  assert.equal(past.body.error.code, 'InvalidNetworkRule');
});

test("an expired rule naming an IP set is reported by the what-if API, matched by the set's ranges", async () => {
  const api = apiFor(berth);
  assert.equal((await api('PUT', '/api/ipSets/shortlived', { ranges: ['127.0.0.5'] })).status, 201);
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.1'] });
  const expiresAt = new Date(Date.now() + 1_000).toISOString();
  const added = await addRule({ ipSet: 'shortlived', expiresAt });
  assert.equal(added.status, 200, added.text);
  await sleep(Math.max(0, Date.parse(expiresAt) - Date.now()) + 50);
  const inSet = await check('127.0.0.5');
  assert.equal(inSet.status, 200, inSet.text);
  assert.equal(inSet.body.allowed, false);
  assert.deepEqual(inSet.body.expiredRules, [{ value: 'ipSet:shortlived', expiresAt, ipSet: 'shortlived' }]);
  const outside = await check('127.0.0.6');
  assert.equal(outside.status, 200, outside.text);
  assert.equal(outside.body.expiredRules, undefined, 'no expired rule covers this address');
  await openNetwork(berth);
  assert.equal((await api('DELETE', '/api/ipSets/shortlived')).status, 204);
});

test('a pull-only rule lets its range pull and refuses its pushes, saying why', async () => {
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.1'] });
  assert.equal((await addRule({ value: '127.0.0.0/24', actions: 'pull' })).status, 200);
  assert.equal((await addRule({ value: '127.0.0.4' })).status, 200);
  // GET and HEAD are pulls.
  assert.equal((await send(berth.url, '/v2/', { from: '127.0.0.3', headers: auth })).status, 200);
  assert.equal(
    (await send(berth.url, '/v2/', { method: 'HEAD', from: '127.0.0.3', headers: auth })).status,
    200,
  );
  // POST (start an upload) is a push.
  const push = await send(berth.url, '/v2/kinds/blobs/uploads/', {
    method: 'POST',
    from: '127.0.0.3',
    headers: auth,
  });
  const denied = expectDenied(push, '127.0.0.3', 'actionNotAllowed');
  assert.match(denied.message, /pull only/);
  // DELETE is a push too.
  expectDenied(
    await send(berth.url, '/v2/kinds/manifests/sha256:' + '0'.repeat(64), {
      method: 'DELETE',
      from: '127.0.0.3',
      headers: auth,
    }),
    '127.0.0.3',
    'actionNotAllowed',
  );
  // The build farm's address (a rule for every action) pushes.
  const farm = await send(berth.url, '/v2/kinds/blobs/uploads/', {
    method: 'POST',
    from: '127.0.0.4',
    headers: auth,
  });
  assert.equal(farm.status, 202, farm.text);
  // The what-if API explains both.
  const pull = await check('127.0.0.3', 'pull');
  assert.deepEqual(
    {
      allowed: pull.body.allowed,
      via: pull.body.via,
      rule: pull.body.matchedRule,
      actions: pull.body.matchedRuleActions,
    },
    { allowed: true, via: 'ipRule', rule: '127.0.0.0/24', actions: 'pull' },
  );
  const refused = await check('127.0.0.3', 'push');
  assert.deepEqual(
    {
      allowed: refused.body.allowed,
      reason: refused.body.reason,
      rule: refused.body.matchedRule,
      action: refused.body.action,
    },
    { allowed: false, reason: 'actionNotAllowed', rule: '127.0.0.0/24', action: 'push' },
  );
  assert.equal((await check('127.0.0.4', 'push')).body.matchedRule, '127.0.0.4');
});

test('report-only mode lets would-be denials through and logs them, marked', async () => {
  const res = await apiFor(berth)('PATCH', '/api/registries/default', {
    properties: {
      networkRuleSet: { defaultAction: 'Deny', ipRules: [{ value: '127.0.0.1' }], enforcement: 'ReportOnly' },
    },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.properties.networkRuleSet.enforcement, 'ReportOnly');
  const since = new Date(Date.now() - 1).toISOString();
  const before = (await denials(berth, `?ip=127.0.0.6`)).value
    .filter((d) => d.reportOnly)
    .reduce((n, d) => n + d.count, 0);
  for (let i = 0; i < 3; i++)
    assert.equal(
      (await send(berth.url, '/v2/', { from: '127.0.0.6', headers: auth })).status,
      200,
      'not blocked',
    );
  const log = await denials(berth, `?ip=127.0.0.6&since=${encodeURIComponent(since)}`);
  const marked = log.value.filter((d) => d.reportOnly);
  assert.equal(marked.reduce((n, d) => n + d.count, 0) - before, 3);
  assert.ok(marked.every((d) => d.reason === 'ipNotAllowed'));
  assert.ok(log.timeSeries.some((p) => (p.counts['reportOnly:ipNotAllowed'] ?? 0) >= 3));
  const whatIf = await check('127.0.0.6');
  assert.equal(whatIf.body.allowed, true);
  assert.equal(whatIf.body.via, 'reportOnly');
  assert.equal(whatIf.body.wouldDeny.reason, 'ipNotAllowed');
  // Enforcing again refuses at once.
  await apiFor(berth)('PATCH', '/api/registries/default', {
    properties: { networkRuleSet: { enforcement: 'Enforced' } },
  });
  expectDenied(
    await send(berth.url, '/v2/', { from: '127.0.0.6', headers: auth }),
    '127.0.0.6',
    'ipNotAllowed',
  );
  const shown = await apiFor(berth)('GET', '/api/registries/default');
  assert.equal(shown.body.properties.networkRuleSet.enforcement, undefined);
});
