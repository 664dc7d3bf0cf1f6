// Edge cases of the network guard found by trying it as a new user would: a Host with the FQDN's
// trailing dot, two Host headers, `::/0` and IPv4 clients, and downloads in flight when their address
// loses access.

import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, beforeEach, test } from 'node:test';
import { apiFor, createRegistry, uniqueName } from '../helpers/management.js';
import {
  endpointOf,
  expectDenied,
  httpBytes,
  openNetwork,
  rawExchange,
  send,
  setNetwork,
  waitFor,
} from '../helpers/net.js';
import { pushBlob, randomBlob } from '../helpers/oci.js';
import { ADMIN_AUTH, startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth();
});
after(() => berth.stop());
beforeEach(() => openNetwork(berth));

const auth = { Authorization: ADMIN_AUTH };

test('Host: <loginServer>. (FQDN with the trailing dot) reaches that registry, not the default one', async () => {
  const name = uniqueName('dotted');
  await createRegistry(apiFor(berth), name, 'Premium', {
    networkRuleSet: { defaultAction: 'Deny', ipRules: [{ action: 'Allow', value: '127.0.0.2' }] },
  });
  const port = endpointOf(berth.url).port;
  for (const host of [
    `${name}.localhost.`,
    `${name}.localhost.:${port}`,
    `${name.toUpperCase()}.LOCALHOST.`,
  ]) {
    // The default registry is open; only the named one's rules refuse 127.0.0.3.
    expectDenied(
      await send(berth.url, '/v2/', { from: '127.0.0.3', headers: { ...auth, Host: host } }),
      '127.0.0.3',
      'ipNotAllowed',
    );
    assert.equal(
      (await send(berth.url, '/v2/', { from: '127.0.0.2', headers: { ...auth, Host: host } })).status,
      200,
    );
  }
});

test('two Host headers are a 400 in the OCI error shape, whatever they name', async () => {
  const target = endpointOf(berth.url);
  for (const hosts of [
    ['localhost', 'localhost'],
    ['localhost', 'other.localhost'],
  ]) {
    const payload = Buffer.from(
      [
        'GET /v2/ HTTP/1.1',
        ...hosts.map((h) => `Host: ${h}`),
        `Authorization: ${ADMIN_AUTH}`,
        'Connection: close',
        '',
        '',
      ].join('\r\n'),
      'latin1',
    );
    const res = await rawExchange(target, payload, { from: '127.0.0.2' });
    assert.equal(res.status, 400, res.data);
    const body = JSON.parse(res.data.slice(res.data.indexOf('\r\n\r\n') + 4)) as {
      errors: { code: string; message: string }[];
    };
    assert.equal(body.errors[0]!.code, 'UNSUPPORTED');
    assert.match(body.errors[0]!.message, /exactly one Host header/);
  }
  // One Host is still fine.
  const one = await rawExchange(
    target,
    httpBytes('GET', '/v2/', 'localhost', [`Authorization: ${ADMIN_AUTH}`]),
  );
  assert.equal(one.status, 200, one.data);
});

test('::/0 allows IPv4 clients too (they are ::ffff:a.b.c.d), and the API warns when it is stored', async () => {
  const res = await apiFor(berth)('PATCH', '/api/registries/default', {
    properties: { networkRuleSet: { defaultAction: 'Deny', ipRules: [{ action: 'Allow', value: '::/0' }] } },
  });
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('warning') ?? '', /'::\/0' also matches every IPv4 client/);
  assert.equal((await send(berth.url, '/v2/', { from: '127.0.0.2', headers: auth })).status, 200);
  const check = await apiFor(berth)('POST', '/api/registries/default/checkNetworkAccess', {
    ip: '127.0.0.2',
  });
  assert.equal(check.body.matchedRule, '::/0');
  // A range inside ::ffff:0:0/96 but shorter than /96 is stored as what it is (here ::/80) and
  // holds every IPv4 client as well; one outside it holds none.
  await setNetwork(berth, { ipRules: ['::ffff:1.2.3.4/80'] });
  assert.equal((await send(berth.url, '/v2/', { from: '127.0.0.3', headers: auth })).status, 200);
  await setNetwork(berth, { ipRules: ['2001:db8::/32'] });
  expectDenied(
    await send(berth.url, '/v2/', { from: '127.0.0.3', headers: auth }),
    '127.0.0.3',
    'ipNotAllowed',
  );
});

test('a download in flight is cut off when its address loses access', async () => {
  const blob = randomBlob(48 * 1024 * 1024);
  const digest = await pushBlob(berth.url, 'cut/download', blob);
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.1', '127.0.0.2'] });
  const { host, port } = endpointOf(berth.url);
  let received = 0;
  let firstChunk = false;
  const outcome = new Promise<{ complete: boolean }>((resolve) => {
    const req = httpRequest(
      { host, port, path: `/v2/cut/download/blobs/${digest}`, localAddress: '127.0.0.2', headers: auth },
      (res) => {
        assert.equal(res.statusCode, 200);
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (!firstChunk) {
            firstChunk = true;
            res.pause(); // hold the download open while the rule changes
          }
        });
        res.on('end', () => resolve({ complete: res.complete && received === blob.length }));
        res.on('aborted', () => resolve({ complete: false }));
        res.on('error', () => resolve({ complete: false }));
        res.on('close', () => resolve({ complete: res.complete && received === blob.length }));
        void waitFor('the first chunk', () => firstChunk, 10_000).then(async () => {
          await setNetwork(berth, { ipRules: ['127.0.0.1'] });
          res.resume();
        });
      },
    );
    req.on('error', () => resolve({ complete: false }));
    req.end();
  });
  const { complete } = await outcome;
  assert.equal(complete, false, 'the download must not complete');
  assert.ok(received < blob.length, `received ${received} of ${blob.length}`);
  // The refused address is refused for new requests; the allowed one still downloads the whole blob.
  expectDenied(
    await send(berth.url, '/v2/', { from: '127.0.0.2', headers: auth }),
    '127.0.0.2',
    'ipNotAllowed',
  );
  const whole = await send(berth.url, `/v2/cut/download/blobs/${digest}`, {
    from: '127.0.0.1',
    headers: auth,
  });
  assert.equal(whole.status, 200);
  assert.equal(whole.body.length, blob.length);
});
