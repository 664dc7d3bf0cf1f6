import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiFor,
  createApiKey,
  createRegistry,
  dataPlane,
  expectApiError,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { ADMIN_AUTH, startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
});
after(async () => {
  await berth.stop();
});

const check = (name: string, ip: unknown) =>
  api('POST', `/api/registries/${name}/checkNetworkAccess`, { ip });

interface Denial {
  time: string;
  minute: string;
  clientIp: string;
  method: string;
  path: string;
  reason: string;
  entry: string;
}

test('checkNetworkAccess: allowed via defaultAction when the registry allows by default', async () => {
  const name = uniqueName('chkallow');
  await createRegistry(api, name, 'Basic');
  const res = await check(name, '198.51.100.7');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, { ip: '198.51.100.7', allowed: true, via: 'defaultAction' });
});

test('checkNetworkAccess: allowed via an ipRule reports the matched rule; others are ipNotAllowed', async () => {
  const name = uniqueName('chkrule');
  await createRegistry(api, name, 'Premium', {
    networkRuleSet: {
      defaultAction: 'Deny',
      ipRules: [{ value: '203.0.113.0/24' }, { value: '203.0.113.128/25' }, { value: '2001:db8::/32' }],
    },
  });
  const inRule = await check(name, '203.0.113.77');
  assert.deepEqual(inRule.body, {
    ip: '203.0.113.77',
    allowed: true,
    via: 'ipRule',
    matchedRule: '203.0.113.0/24',
  });
  const longest = await check(name, '203.0.113.200');
  assert.equal(longest.body.matchedRule, '203.0.113.128/25', 'the most specific rule is reported');
  const mapped = await check(name, '::ffff:203.0.113.5');
  assert.deepEqual([mapped.body.ip, mapped.body.allowed], ['203.0.113.5', true], 'mapped IPv6 is IPv4');
  const v6 = await check(name, '2001:DB8:0::5');
  assert.deepEqual([v6.body.ip, v6.body.matchedRule], ['2001:db8::5', '2001:db8::/32']);

  const denied = await check(name, '198.51.100.1');
  assert.equal(denied.status, 200);
  assert.equal(denied.body.ip, '198.51.100.1');
  assert.equal(denied.body.allowed, false);
  assert.equal(denied.body.reason, 'ipNotAllowed');
  assert.match(denied.body.message, /client with IP '198\.51\.100\.1' is not allowed access/);
  assert.equal(denied.body.matchedRule, undefined);
});

test('checkNetworkAccess: publicNetworkAccess Disabled denies even addresses in a rule', async () => {
  const name = uniqueName('chkpna');
  await createRegistry(api, name, 'Premium', {
    publicNetworkAccess: 'Disabled',
    networkRuleSet: { defaultAction: 'Allow', ipRules: [{ value: '203.0.113.0/24' }] },
  });
  const res = await check(name, '203.0.113.9');
  assert.equal(res.body.allowed, false);
  assert.equal(res.body.reason, 'publicNetworkAccessDisabled');
  assert.match(res.body.message, /disabled/);
});

test('checkNetworkAccess: an invalid ip is 400; a missing one too; an unknown registry 404', async () => {
  const name = uniqueName('chkbad');
  await createRegistry(api, name, 'Basic');
  for (const ip of ['not-an-ip', '', '1.2.3.4/24', '300.1.1.1', '1.2.3', 'x'.repeat(5000)]) {
    const error = expectApiError(await check(name, ip), 400, 'InvalidParameter');
    assert.ok(error.message.includes(ip.slice(0, 50)), error.message);
  }
  expectApiError(await check(name, 1234), 400, 'InvalidRequestContent');
  expectApiError(
    await api('POST', `/api/registries/${name}/checkNetworkAccess`, {}),
    400,
    'InvalidRequestContent',
    /ip/,
  );
  expectApiError(await check(uniqueName('nosuch'), '1.2.3.4'), 404, 'ResourceNotFound');
});

test('the data plane refuses a denied client with 403 DENIED and the decision applies at once', async () => {
  const name = uniqueName('dpdeny');
  await createRegistry(api, name, 'Premium');
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/')).status, 200);
  await api('PATCH', `/api/registries/${name}`, {
    properties: { networkRuleSet: { defaultAction: 'Deny' } },
  });
  const res = await dataPlane(berth, name, 'GET', '/v2/');
  assert.equal(res.status, 403);
  const body = JSON.parse(res.body.toString()) as { errors: { code: string; message: string }[] };
  assert.equal(body.errors[0]!.code, 'DENIED');
  assert.match(body.errors[0]!.message, /127\.0\.0\.1/);
  // Another registry on the same listener is unaffected.
  assert.equal((await dataPlane(berth, 'default', 'GET', '/v2/')).status, 200);
  await api('PATCH', `/api/registries/${name}`, {
    properties: { networkRuleSet: { ipRules: [{ value: '127.0.0.1' }] } },
  });
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/')).status, 200);
});

test('networkDenials: refused requests are logged with time, clientIp, method, path, reason', async () => {
  const name = uniqueName('denials');
  await createRegistry(api, name, 'Premium', {
    networkRuleSet: { defaultAction: 'Deny', ipRules: [{ value: '127.0.0.3' }] },
  });
  const start = Date.now();
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/')).status, 403);
  assert.equal((await dataPlane(berth, name, 'GET', '/v2/_catalog?n=5')).status, 403);
  assert.equal(
    (await dataPlane(berth, name, 'HEAD', '/v2/app/manifests/latest', { from: '127.0.0.2' })).status,
    403,
  );
  assert.equal(
    (await dataPlane(berth, name, 'GET', '/v2/', { from: '127.0.0.3' })).status,
    200,
    'allowed, not logged',
  );
  const end = Date.now();

  const res = await api('GET', `/api/registries/${name}/networkDenials`);
  assert.equal(res.status, 200, res.text);
  // One entry per address, reason, entry point and minute (these few requests share a minute unless
  // they straddle one), counting its requests and keeping a few distinct samples.
  const value = res.body.value as (Denial & { count: number; samples: { method: string; path: string }[] })[];
  const byIp = (ip: string) => value.filter((d) => d.clientIp === ip);
  const one = byIp('127.0.0.1');
  assert.equal(
    one.reduce((n, d) => n + d.count, 0),
    2,
  );
  assert.deepEqual(
    one.flatMap((d) => d.samples).sort((a, b) => a.path.localeCompare(b.path)),
    [
      { method: 'GET', path: '/v2/' },
      { method: 'GET', path: '/v2/_catalog' },
    ],
    'query strings dropped',
  );
  const two = byIp('127.0.0.2');
  assert.deepEqual(
    two.map(({ method, path, reason, entry, count }) => ({ method, path, reason, entry, count })),
    [{ method: 'HEAD', path: '/v2/app/manifests/latest', reason: 'ipNotAllowed', entry: 'public', count: 1 }],
  );
  assert.equal(value[0]!.clientIp, '127.0.0.2', 'newest first');
  assert.equal(byIp('127.0.0.3').length, 0, 'allowed requests are absent');
  for (const denial of value) {
    const time = Date.parse(denial.time);
    assert.ok(time >= start - 5 && time <= end + 5, denial.time);
    assert.equal(new Date(time).toISOString(), denial.time);
    assert.equal(Date.parse(denial.minute) % 60_000, 0);
  }
  assert.deepEqual(
    (res.body.countsByIp as { clientIp: string; count: number }[]).map(({ clientIp, count }) => ({
      clientIp,
      count,
    })),
    [
      { clientIp: '127.0.0.1', count: 2 },
      { clientIp: '127.0.0.2', count: 1 },
    ],
  );
  const last = res.body.countsByIp[0].lastSeen as string;
  assert.equal(last, one[0]!.time, 'lastSeen is the newest denial of that address');
  // The time series counts the same requests per minute and reason.
  const series = res.body.timeSeries as { time: string; counts: Record<string, number> }[];
  assert.equal(
    series.reduce((n, p) => n + (p.counts.ipNotAllowed ?? 0), 0),
    3,
  );
  assert.ok(series.every((p) => Date.parse(p.time) % 60_000 === 0));

  const other = uniqueName('nodenials');
  await createRegistry(api, other, 'Premium');
  const empty = await api('GET', `/api/registries/${other}/networkDenials`);
  assert.deepEqual(
    empty.body,
    { value: [], countsByIp: [], timeSeries: [] },
    "another registry's log is separate",
  );
});

test('networkDenials: ?ip=, ?since= and ?limit= filter the log', async () => {
  const name = uniqueName('denfilter');
  await createRegistry(api, name, 'Premium', { publicNetworkAccess: 'Disabled' });
  await dataPlane(berth, name, 'GET', '/v2/');
  await dataPlane(berth, name, 'GET', '/v2/', { from: '127.0.0.2' });
  await dataPlane(berth, name, 'GET', '/v2/a/tags/list', { from: '127.0.0.2' });
  await dataPlane(berth, name, 'GET', '/v2/b/tags/list', { from: '127.0.0.4' });
  const total = (body: { countsByIp: { count: number }[] }) =>
    body.countsByIp.reduce((n, c) => n + c.count, 0);

  const all = await api('GET', `/api/registries/${name}/networkDenials`);
  assert.equal(total(all.body), 4);
  assert.ok(all.body.value.every((d: Denial) => d.reason === 'publicNetworkAccessDisabled'));

  const byIp = await api('GET', `/api/registries/${name}/networkDenials?ip=127.0.0.2`);
  assert.ok(byIp.body.value.every((d: Denial) => d.clientIp === '127.0.0.2'));
  assert.deepEqual(
    byIp.body.value.flatMap((d: { samples: { path: string }[] }) => d.samples.map((s) => s.path)).sort(),
    ['/v2/', '/v2/a/tags/list'],
  );
  assert.deepEqual(
    byIp.body.countsByIp.map((c: { clientIp: string; count: number }) => [c.clientIp, c.count]),
    [['127.0.0.2', 2]],
  );

  const mapped = await api(
    'GET',
    `/api/registries/${name}/networkDenials?ip=${encodeURIComponent('::ffff:127.0.0.2')}`,
  );
  assert.equal(mapped.status, 200, mapped.text);
  assert.equal(total(mapped.body), 2, 'the filter is read canonically, like the log');
  expectApiError(
    await api('GET', `/api/registries/${name}/networkDenials?ip=not-an-ip`),
    400,
    'InvalidParameter',
    'not-an-ip',
  );

  // `since` keeps entries whose latest denial is at or after it (the log has minute buckets).
  const future = new Date(Date.now() + 120_000).toISOString();
  const none = await api('GET', `/api/registries/${name}/networkDenials?since=${encodeURIComponent(future)}`);
  assert.deepEqual(none.body, { value: [], countsByIp: [], timeSeries: [] });
  const past = new Date(Date.now() - 120_000).toISOString();
  const recent = await api(
    'GET',
    `/api/registries/${name}/networkDenials?since=${encodeURIComponent(past)}&ip=127.0.0.4`,
  );
  assert.deepEqual(
    recent.body.value.map((d: Denial) => d.clientIp),
    ['127.0.0.4'],
  );

  const limited = await api('GET', `/api/registries/${name}/networkDenials?limit=1`);
  assert.equal(limited.body.value.length, 1);
  assert.equal(limited.body.value[0].clientIp, '127.0.0.4', 'the newest entry');
  assert.equal(total(limited.body), 4, 'counts are not cut by the limit');

  expectApiError(
    await api('GET', `/api/registries/${name}/networkDenials?since=yesterday`),
    400,
    'InvalidRequestContent',
  );
});

test('a trusted-service key bypasses the public rules only where the registry allows it', async () => {
  const allowing = uniqueName('bypasson');
  const refusing = uniqueName('bypassoff');
  const rules = { networkRuleSet: { defaultAction: 'Deny' } };
  await createRegistry(api, allowing, 'Premium', { ...rules, networkRuleBypassOptions: 'AzureServices' });
  await createRegistry(api, refusing, 'Premium', { ...rules, networkRuleBypassOptions: 'None' });
  const trusted = await api('POST', '/api/apiKeys', {
    name: uniqueName('svc'),
    role: 'Reader',
    trustedService: true,
  });
  assert.equal(trusted.status, 201, trusted.text);
  const plain = await createApiKey(api, uniqueName('plain'), 'Reader');
  const asTrusted = { headers: { Authorization: `Bearer ${trusted.body.key}` } };

  assert.equal((await dataPlane(berth, allowing, 'GET', '/v2/', asTrusted)).status, 200);
  assert.equal((await dataPlane(berth, refusing, 'GET', '/v2/', asTrusted)).status, 403);
  assert.equal(
    (await dataPlane(berth, allowing, 'GET', '/v2/', { headers: { Authorization: plain.auth } })).status,
    403,
  );
  assert.equal(
    (await dataPlane(berth, allowing, 'GET', '/v2/', { headers: { Authorization: ADMIN_AUTH } })).status,
    403,
  );
});

test('proxy headers from an untrusted peer do not change the caller address of repository views', async () => {
  const name = uniqueName('xff');
  await createRegistry(api, name, 'Premium', {
    networkRuleSet: { defaultAction: 'Deny', ipRules: [{ value: '203.0.113.0/24' }] },
  });
  const spoofed: Record<string, string>[] = [
    { 'X-Forwarded-For': '203.0.113.5' },
    { Forwarded: 'for=203.0.113.5' },
  ];
  for (const header of spoofed) {
    const res = await fetch(`${berth.managementUrl}/api/registries/${name}/repositories`, {
      headers: { Authorization: ADMIN_AUTH, ...header },
    });
    assert.equal(res.status, 403, JSON.stringify(header));
  }
});
