// Every branch of the access decision, over real sockets from chosen loopback source addresses.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  api,
  dataUrl,
  endpointOf,
  expectDenied,
  openNetwork,
  send,
  setNetwork,
  type NetResponse,
} from '../helpers/net.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let v4: string;
let v6: string;
/** A dual-stack listener: IPv4 clients reach it as IPv4-mapped IPv6 peers (::ffff:127.0.0.2). */
let dualStackPort: number;

before(async () => {
  berth = await startTestBerth({ listen: ['127.0.0.1:0', '[::1]:0', '[::]:0'] });
  v4 = dataUrl(berth, 4);
  v6 = berth.urls[1]!;
  dualStackPort = endpointOf(berth.urls[2]!).port;
});
after(() => berth.stop());
beforeEach(() => openNetwork(berth));

const base = (from: string) => (from.includes(':') ? v6 : v4);
const get = (from: string, headers: Record<string, string> = {}): Promise<NetResponse> =>
  send(base(from), '/v2/', { from, headers });

describe('public entry', () => {
  test('default Allow: every address is served', async () => {
    for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.77', '::1']) {
      const res = await get(from);
      assert.equal(res.status, 200, `${from}: ${res.text}`);
      assert.equal(res.localAddress, from, 'the request must really leave from the chosen address');
    }
  });

  test('Deny with an ipRule: the listed address is served, another gets 403 DENIED ipNotAllowed', async () => {
    await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.2'] });
    assert.equal((await get('127.0.0.2')).status, 200);
    const refused = await get('127.0.0.3');
    const error = expectDenied(refused, '127.0.0.3', 'ipNotAllowed');
    assert.equal(
      error.message,
      "client with IP '127.0.0.3' is not allowed access. Ask the registry owner to update the registry's network rules to allow this address.",
    );
    assert.equal(error.detail.registry, 'default');
    assert.equal(refused.headers['docker-distribution-api-version'], 'registry/2.0');
  });

  test('Deny with no rules refuses everyone, including the loopback default 127.0.0.1', async () => {
    await setNetwork(berth, { defaultAction: 'Deny', ipRules: [] });
    expectDenied(await get('127.0.0.1'), '127.0.0.1', 'ipNotAllowed');
    expectDenied(await get('::1'), '::1', 'ipNotAllowed');
  });

  test('a CIDR rule 127.0.0.0/30 admits .1-.3 and refuses .4 and beyond', async () => {
    await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.0/30'] });
    for (const from of ['127.0.0.1', '127.0.0.2', '127.0.0.3'])
      assert.equal((await get(from)).status, 200, from);
    expectDenied(await get('127.0.0.4'), '127.0.0.4', 'ipNotAllowed');
    expectDenied(await get('127.0.1.2'), '127.0.1.2', 'ipNotAllowed');
  });

  test('an IPv6 rule ::1 admits ::1 and no IPv4 address', async () => {
    await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['::1'] });
    const res = await get('::1');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.localAddress, '::1');
    expectDenied(await get('127.0.0.1'), '127.0.0.1', 'ipNotAllowed');
  });

  test('an IPv4 rule matches an IPv4-mapped IPv6 peer on a dual-stack listener', async () => {
    await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.2'] });
    const dual = `http://127.0.0.1:${dualStackPort}`;
    const allowed = await send(dual, '/v2/', { from: '127.0.0.2' });
    assert.equal(allowed.status, 200, allowed.text);
    // The refusal names the plain IPv4 form, not ::ffff:127.0.0.3.
    expectDenied(await send(dual, '/v2/', { from: '127.0.0.3' }), '127.0.0.3', 'ipNotAllowed');
  });

  test('publicNetworkAccess Disabled refuses even an address with a rule, and with defaultAction Allow', async () => {
    await setNetwork(berth, {
      publicNetworkAccess: 'Disabled',
      defaultAction: 'Deny',
      ipRules: ['127.0.0.2', '::1'],
    });
    const error = expectDenied(await get('127.0.0.2'), '127.0.0.2', 'publicNetworkAccessDisabled');
    assert.match(error.message, /Public network access to this registry is disabled/);
    expectDenied(await get('::1'), '::1', 'publicNetworkAccessDisabled');
    await setNetwork(berth, { defaultAction: 'Allow' });
    expectDenied(await get('127.0.0.3'), '127.0.0.3', 'publicNetworkAccessDisabled');
    await setNetwork(berth, { publicNetworkAccess: 'Enabled' });
    assert.equal((await get('127.0.0.3')).status, 200);
  });

  test('checkNetworkAccess agrees with what the data plane does', async () => {
    await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.0/30'] });
    const check = async (ip: string) => {
      const res = await api(berth, 'POST', '/api/registries/default/checkNetworkAccess', { ip });
      assert.equal(res.status, 200, res.text);
      return res.json as { allowed: boolean; reason?: string; matchedRule?: string };
    };
    const allowed = await check('127.0.0.2');
    assert.equal(allowed.allowed, true);
    assert.equal(allowed.matchedRule, '127.0.0.0/30');
    assert.equal((await check('127.0.0.4')).reason, 'ipNotAllowed');
    assert.equal((await get('127.0.0.2')).status, 200);
    assert.equal((await get('127.0.0.4')).status, 403);
  });
});

describe('several registries', () => {
  test('each registry is decided by its own rules, chosen by Host', async () => {
    const created = await api(berth, 'PUT', '/api/registries/teamregistry', { sku: { name: 'Premium' } });
    assert.equal(created.status, 201, created.text);
    await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.2'] }, 'teamregistry');
    const team = { Host: 'teamregistry.localhost' };
    assert.equal((await get('127.0.0.2', team)).status, 200);
    const refused = expectDenied(await get('127.0.0.3', team), '127.0.0.3', 'ipNotAllowed');
    assert.equal(refused.detail.registry, 'teamregistry');
    // The default registry (any other Host) keeps its own, open, settings.
    assert.equal((await get('127.0.0.3')).status, 200);
    assert.equal((await get('127.0.0.3', { Host: 'nosuchregistry.localhost' })).status, 200);
    // Closing the default registry does not open or close the other one.
    await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.3'] });
    expectDenied(await get('127.0.0.2'), '127.0.0.2', 'ipNotAllowed');
    assert.equal((await get('127.0.0.2', team)).status, 200);
    expectDenied(await get('127.0.0.3', team), '127.0.0.3', 'ipNotAllowed');
    assert.equal((await api(berth, 'DELETE', '/api/registries/teamregistry')).status, 204);
  });
});

describe('trusted-service bypass', () => {
  let trustedKey: string;
  let plainKey: string;

  before(async () => {
    const create = async (name: string, trustedService: boolean) => {
      const res = await api(berth, 'POST', '/api/apiKeys', { name, role: 'Reader', trustedService });
      assert.equal(res.status, 201, res.text);
      const body = res.json as { key: string; trustedService: boolean };
      assert.equal(body.trustedService, trustedService);
      return body.key;
    };
    trustedKey = await create('scanner', true);
    plainKey = await create('ci-reader', false);
  });

  const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

  test('AzureServices: a trusted key is served from a denied address; a plain key and no key are not', async () => {
    await setNetwork(berth, {
      defaultAction: 'Deny',
      ipRules: [],
      networkRuleBypassOptions: 'AzureServices',
    });
    const trusted = await get('127.0.0.3', bearer(trustedKey));
    assert.equal(trusted.status, 200, trusted.text);
    expectDenied(await get('127.0.0.3', bearer(plainKey)), '127.0.0.3', 'ipNotAllowed');
    expectDenied(await get('127.0.0.3'), '127.0.0.3', 'ipNotAllowed');
    // A trusted key's id with a wrong secret must not pass either.
    const forged = trustedKey.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    expectDenied(await get('127.0.0.3', bearer(forged)), '127.0.0.3', 'ipNotAllowed');
    expectDenied(
      await get('127.0.0.3', { Authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` }),
      '127.0.0.3',
      'ipNotAllowed',
    );
  });

  test('AzureServices: the bypass also applies when public access is disabled', async () => {
    await setNetwork(berth, { publicNetworkAccess: 'Disabled', networkRuleBypassOptions: 'AzureServices' });
    assert.equal((await get('127.0.0.3', bearer(trustedKey))).status, 200);
    expectDenied(await get('127.0.0.3', bearer(plainKey)), '127.0.0.3', 'publicNetworkAccessDisabled');
  });

  test('None: a trusted key is refused like anyone else', async () => {
    await setNetwork(berth, { defaultAction: 'Deny', ipRules: [], networkRuleBypassOptions: 'None' });
    expectDenied(await get('127.0.0.3', bearer(trustedKey)), '127.0.0.3', 'ipNotAllowed');
    await setNetwork(berth, { publicNetworkAccess: 'Disabled' });
    expectDenied(await get('127.0.0.3', bearer(trustedKey)), '127.0.0.3', 'publicNetworkAccessDisabled');
  });

  test('deleting a trusted key ends its bypass at once', async () => {
    const res = await api(berth, 'POST', '/api/apiKeys', {
      name: 'short-lived',
      role: 'Reader',
      trustedService: true,
    });
    const { id, key } = res.json as { id: string; key: string };
    await setNetwork(berth, {
      defaultAction: 'Deny',
      ipRules: [],
      networkRuleBypassOptions: 'AzureServices',
    });
    assert.equal((await get('127.0.0.3', bearer(key))).status, 200);
    assert.equal((await api(berth, 'DELETE', `/api/apiKeys/${id}`)).status, 204);
    expectDenied(await get('127.0.0.3', bearer(key)), '127.0.0.3', 'ipNotAllowed');
  });

  test('the guard looks at no credential unless a trusted service could be let in by it', async () => {
    const identities = berth.identities;
    const originalKey = identities.verifyApiKey.bind(identities);
    const originalUser = identities.verifyUser.bind(identities);
    const seen: string[] = [];
    identities.verifyApiKey = (key) => {
      seen.push(key);
      return originalKey(key);
    };
    identities.verifyUser = (name, password) => {
      seen.push(`${name}:${password}`);
      return originalUser(name, password);
    };
    try {
      const owner = `Basic ${Buffer.from('admin:test-admin-password').toString('base64')}`;
      await setNetwork(berth, { defaultAction: 'Deny', ipRules: [], networkRuleBypassOptions: 'None' });
      seen.length = 0;
      // Bypass off: a refused request's credentials are never checked, whatever they are.
      expectDenied(await get('127.0.0.3', bearer(trustedKey)), '127.0.0.3', 'ipNotAllowed');
      expectDenied(await get('127.0.0.3', { Authorization: owner }), '127.0.0.3', 'ipNotAllowed');
      assert.deepEqual(seen, [], 'no credential may be verified for a refused network without bypass');

      await setNetwork(berth, { networkRuleBypassOptions: 'AzureServices' });
      seen.length = 0;
      // Bypass on: only API keys can be trusted services; a password is never checked from a refused
      // network (it would let the network test passwords, and cost a scrypt per request).
      expectDenied(await get('127.0.0.3', { Authorization: owner }), '127.0.0.3', 'ipNotAllowed');
      expectDenied(
        await get('127.0.0.3', { Authorization: `Basic ${Buffer.from('admin:guess').toString('base64')}` }),
        '127.0.0.3',
        'ipNotAllowed',
      );
      assert.deepEqual(seen, [], 'a password must not be checked by the network guard');
      assert.equal((await get('127.0.0.3', bearer(trustedKey))).status, 200);
      assert.deepEqual(seen, [trustedKey]);
    } finally {
      identities.verifyApiKey = originalKey;
      identities.verifyUser = originalUser;
    }
  });
});
