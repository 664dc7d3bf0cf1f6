// X-Forwarded-For and Forwarded count only when the socket peer is a trusted proxy, and only the hops
// that trusted proxies appended: a client's own additions are never believed.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, expectDenied, send, setNetwork, type NetResponse } from '../helpers/net.js';
import { pushImage } from '../helpers/oci.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

const PROXY = '127.0.0.5';
const SECOND_PROXY = '127.0.0.6';

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth({ trustedProxies: [PROXY, SECOND_PROXY] });
  await pushImage(berth.url, 'forwarded/app', 'v1');
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['10.9.9.9', '203.0.113.7', '2001:db8::1'] });
});
after(() => berth.stop());

const get = (from: string, headers: Record<string, string>): Promise<NetResponse> =>
  send(berth.url, '/v2/', { from, headers });

test('an untrusted peer cannot claim an allowed address with X-Forwarded-For or Forwarded', async () => {
  expectDenied(await get('127.0.0.3', { 'X-Forwarded-For': '10.9.9.9' }), '127.0.0.3', 'ipNotAllowed');
  expectDenied(await get('127.0.0.3', { Forwarded: 'for=10.9.9.9' }), '127.0.0.3', 'ipNotAllowed');
  expectDenied(
    await get('127.0.0.3', { 'X-Forwarded-For': '10.9.9.9', Forwarded: 'for="[2001:db8::1]:4711"' }),
    '127.0.0.3',
    'ipNotAllowed',
  );
  // Other headers proxies use are not read at all.
  expectDenied(
    await get('127.0.0.3', { 'X-Real-IP': '10.9.9.9', 'True-Client-IP': '10.9.9.9' }),
    '127.0.0.3',
    'ipNotAllowed',
  );
});

test('from a trusted proxy, X-Forwarded-For names the client the rules are applied to', async () => {
  const allowed = await get(PROXY, { 'X-Forwarded-For': '203.0.113.7' });
  assert.equal(allowed.status, 200, allowed.text);
  expectDenied(await get(PROXY, { 'X-Forwarded-For': '203.0.113.8' }), '203.0.113.8', 'ipNotAllowed');
  // Without a header the proxy itself is the client.
  expectDenied(await get(PROXY, {}), PROXY, 'ipNotAllowed');
});

test('two trusted hops: the chain is walked right to left past every trusted proxy', async () => {
  const allowed = await get(PROXY, { 'X-Forwarded-For': `203.0.113.7, ${SECOND_PROXY}` });
  assert.equal(allowed.status, 200, allowed.text);
  expectDenied(
    await get(PROXY, { 'X-Forwarded-For': `203.0.113.8, ${SECOND_PROXY}` }),
    '203.0.113.8',
    'ipNotAllowed',
  );
  // A hop that is no trusted proxy ends the walk: it is the client, whatever stands to its left.
  expectDenied(
    await get(PROXY, { 'X-Forwarded-For': '203.0.113.7, 127.0.0.9' }),
    '127.0.0.9',
    'ipNotAllowed',
  );
  // Repeated headers are one list, in order.
  const repeated = await send(berth.url, '/v2/', {
    from: PROXY,
    headers: { 'X-Forwarded-For': ['203.0.113.7', SECOND_PROXY] },
  });
  assert.equal(repeated.status, 200, repeated.text);
});

test('Forwarded (RFC 7239) with a quoted, bracketed IPv6 node and port', async () => {
  const allowed = await get(PROXY, { Forwarded: 'for="[2001:db8::1]:4711";proto=https;by=203.0.113.1' });
  assert.equal(allowed.status, 200, allowed.text);
  expectDenied(await get(PROXY, { Forwarded: 'for="[2001:db8::2]:4711"' }), '2001:db8::2', 'ipNotAllowed');
  // Forwarded wins over X-Forwarded-For when both are present.
  expectDenied(
    await get(PROXY, { Forwarded: 'for=203.0.113.8', 'X-Forwarded-For': '203.0.113.7' }),
    '203.0.113.8',
    'ipNotAllowed',
  );
  // Two elements: the proxy's own is the rightmost, the client's spoof to its left is ignored.
  expectDenied(
    await get(PROXY, { Forwarded: 'for=10.9.9.9, for=203.0.113.8' }),
    '203.0.113.8',
    'ipNotAllowed',
  );
});

test('a client-prepended spoof through one trusted proxy is ignored', async () => {
  // The client sent "X-Forwarded-For: 10.9.9.9"; the proxy appended the address it saw.
  const decided = await get(PROXY, { 'X-Forwarded-For': '10.9.9.9, 203.0.113.7' });
  assert.equal(decided.status, 200, decided.text);
  // Had the spoof been believed, this would be allowed (10.9.9.9 has a rule).
  expectDenied(
    await get(PROXY, { 'X-Forwarded-For': '10.9.9.9, 203.0.113.8' }),
    '203.0.113.8',
    'ipNotAllowed',
  );
});

test('an unreadable hop is not skipped: the address to its right is the client', async () => {
  expectDenied(
    await get(PROXY, { 'X-Forwarded-For': '10.9.9.9, not-an-ip, 127.0.0.6' }),
    SECOND_PROXY,
    'ipNotAllowed',
  );
  expectDenied(await get(PROXY, { Forwarded: 'for=unknown' }), PROXY, 'ipNotAllowed');
});

test('the denial log records the forwarded client address, not the proxy', async () => {
  const before = await api(berth, 'GET', '/api/registries/default/networkDenials?ip=203.0.113.99');
  assert.equal((before.json as { value: unknown[] }).value.length, 0);
  expectDenied(await get(PROXY, { 'X-Forwarded-For': '203.0.113.99' }), '203.0.113.99', 'ipNotAllowed');
  const after = await api(berth, 'GET', '/api/registries/default/networkDenials?ip=203.0.113.99');
  const value = (after.json as { value: { clientIp: string; path: string }[] }).value;
  assert.deepEqual(
    value.map((d) => [d.clientIp, d.path]),
    [['203.0.113.99', '/v2/']],
  );
});

test('the management repository listing uses the same client address rules', async () => {
  const list = (from: string, headers: Record<string, string> = {}) =>
    send(berth.managementUrl, '/api/registries/default/repositories', {
      from,
      headers: {
        Authorization: `Basic ${Buffer.from('admin:test-admin-password').toString('base64')}`,
        ...headers,
      },
    });
  const viaProxy = await list(PROXY, { 'X-Forwarded-For': '203.0.113.7' });
  assert.equal(viaProxy.status, 200, viaProxy.text);
  assert.deepEqual((JSON.parse(viaProxy.text) as { value: string[] }).value, ['forwarded/app']);
  const spoofed = await list('127.0.0.3', { 'X-Forwarded-For': '203.0.113.7' });
  assert.equal(spoofed.status, 403, spoofed.text);
  assert.equal((JSON.parse(spoofed.text) as { error: { code: string } }).error.code, 'NetworkAccessDenied');
});
