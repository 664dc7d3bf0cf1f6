// PROXY protocol (v1 text, v2 binary) on the public listener: honoured from trusted load balancers
// only, required from them, and never a way for anyone else to claim an address.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { encodeProxyV1, encodeProxyV2 } from '../../src/network/index.js';
import {
  denials,
  endpointOf,
  holdConnection,
  httpBytes,
  rawExchange,
  setNetwork,
  type RawExchange,
} from '../helpers/net.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

const BALANCER = '127.0.0.5';

let berth: TestBerth;
let target: { host: string; port: number };
let host: string;

before(async () => {
  berth = await startTestBerth({ proxyProtocol: true, trustedProxies: [BALANCER] });
  target = endpointOf(berth.url);
  host = `${target.host}:${target.port}`;
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['203.0.113.9', '2001:db8::/48'] });
});
after(() => berth.stop());

const destination = () => ({ address: target.host, port: target.port });
const v1 = (source: string) =>
  encodeProxyV1({
    source: { address: source, port: 40000 },
    // v1 carries one family per line: TCP6 needs an IPv6 destination too.
    destination: source.includes(':') ? { address: '::1', port: target.port } : destination(),
  });
const v2 = (source: string) =>
  encodeProxyV2({ source: { address: source, port: 40000 }, destination: destination() });
const getV2 = (headers: string[] = []) => httpBytes('GET', '/v2/', host, headers);

/** Asserts a raw answer is 403 DENIED for `clientIp`. */
function assertDeniedFor(res: RawExchange, clientIp: string): void {
  assert.equal(res.status, 403, res.data);
  const body = JSON.parse(res.data.slice(res.data.indexOf('\r\n\r\n') + 4)) as {
    errors: { code: string; message: string; detail: { clientIp: string } }[];
  };
  assert.equal(body.errors[0]!.code, 'DENIED');
  assert.equal(body.errors[0]!.detail.clientIp, clientIp);
  assert.ok(body.errors[0]!.message.startsWith(`client with IP '${clientIp}' `), body.errors[0]!.message);
}

test("v1 from the trusted balancer: the request is decided as the header's source address", async () => {
  const header = v1('203.0.113.9');
  assert.match(header.toString('latin1'), /^PROXY TCP4 203\.0\.113\.9 /);
  const allowed = await rawExchange(target, Buffer.concat([header, getV2()]), { from: BALANCER });
  assert.equal(allowed.status, 200, allowed.data);
  assertDeniedFor(
    await rawExchange(target, Buffer.concat([v1('203.0.113.10'), getV2()]), { from: BALANCER }),
    '203.0.113.10',
  );
});

test('v2 binary header, IPv4 and IPv6 sources', async () => {
  const allowed = await rawExchange(target, Buffer.concat([v2('203.0.113.9'), getV2()]), { from: BALANCER });
  assert.equal(allowed.status, 200, allowed.data);
  const v6 = await rawExchange(target, Buffer.concat([v2('2001:db8::9'), getV2()]), { from: BALANCER });
  assert.equal(v6.status, 200, v6.data);
  assertDeniedFor(
    await rawExchange(target, Buffer.concat([v2('198.51.100.1'), getV2()]), { from: BALANCER }),
    '198.51.100.1',
  );
  assertDeniedFor(
    await rawExchange(target, Buffer.concat([v1('2001:db9::1'), getV2()]), { from: BALANCER }),
    '2001:db9::1',
  );
});

test('a header arriving in fragments, and the request right behind it in the same segment, both work', async () => {
  const header = v2('203.0.113.9');
  const request = getV2();
  const fragmented = await rawExchange(
    target,
    [
      header.subarray(0, 5),
      header.subarray(5, 14),
      Buffer.concat([header.subarray(14), request.subarray(0, 10)]),
      request.subarray(10),
    ],
    { from: BALANCER },
  );
  assert.equal(fragmented.status, 200, fragmented.data);
});

test('LOCAL (v2) and UNKNOWN (v1) mean the balancer itself is the client', async () => {
  assertDeniedFor(
    await rawExchange(target, Buffer.concat([encodeProxyV2(), getV2()]), { from: BALANCER }),
    BALANCER,
  );
  assertDeniedFor(
    await rawExchange(target, Buffer.concat([encodeProxyV1(), getV2()]), { from: BALANCER }),
    BALANCER,
  );
});

test("after the trusted balancer's UNKNOWN / LOCAL, the client's own X-Forwarded-For is not believed", async () => {
  // The balancer is a trusted proxy, but it did not write these headers: it could not even say who
  // the client was, so the allowed address in them is the client's own claim.
  for (const header of [encodeProxyV1(), encodeProxyV2()]) {
    for (const claim of ['X-Forwarded-For: 203.0.113.9', 'Forwarded: for=203.0.113.9']) {
      assertDeniedFor(
        await rawExchange(target, Buffer.concat([header, getV2([claim])]), { from: BALANCER }),
        BALANCER,
      );
    }
  }
});

test('every request on a kept-alive connection is decided as the PROXY source', async () => {
  const held = await holdConnection(target, BALANCER);
  try {
    held.socket.write(v1('203.0.113.9'));
    assert.equal(await held.get('/v2/', host), 200);
    assert.equal(await held.get('/v2/_catalog', host), 200);
    await setNetwork(berth, { ipRules: ['2001:db8::/48'] });
    assert.equal(await held.get('/v2/', host), 403);
  } finally {
    held.socket.destroy();
    await setNetwork(berth, { ipRules: ['203.0.113.9', '2001:db8::/48'] });
  }
});

test('X-Forwarded-For behind a PROXY header is not believed: the PROXY source is no trusted proxy', async () => {
  assertDeniedFor(
    await rawExchange(target, Buffer.concat([v1('203.0.113.10'), getV2(['X-Forwarded-For: 203.0.113.9'])]), {
      from: BALANCER,
    }),
    '203.0.113.10',
  );
});

test("an untrusted peer's PROXY header is not honoured: 400 or closed, never decided as the claimed address", async () => {
  // The log's `since` is inclusive and counts milliseconds: the previous test's denial (of a claimed
  // address it rightly believed) can carry this very millisecond, so start from a later one.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const sinceIso = new Date().toISOString();
  for (const header of [v1('203.0.113.9'), v2('203.0.113.9')]) {
    const res = await rawExchange(target, Buffer.concat([header, getV2()]), { from: '127.0.0.3' });
    assert.notEqual(res.status, 200, res.data);
    if (res.status !== undefined) assert.equal(res.status, 400, res.data);
    else assert.equal(res.closed, true);
  }
  // The same peer speaking plain HTTP is an ordinary client, decided by its socket address.
  assertDeniedFor(await rawExchange(target, getV2(), { from: '127.0.0.3' }), '127.0.0.3');
  const log = await denials(berth, `?since=${encodeURIComponent(sinceIso)}`);
  assert.ok(
    log.value.every((d) => d.clientIp === '127.0.0.3'),
    `no denial may name a claimed address: ${JSON.stringify(log.value)}`,
  );
});

test('the trusted balancer must send a header: plain HTTP or a malformed header closes the connection', async () => {
  const malformed = [
    getV2(), // no header at all
    Buffer.from('PROXY TCP4 999.0.0.1 127.0.0.1 40000 5000\r\n', 'latin1'),
    Buffer.from('PROXY TCP4 203.0.113.9 127.0.0.1 40000\r\n', 'latin1'), // five fields
    Buffer.from('PROXY TCP6 203.0.113.9 127.0.0.1 40000 5000\r\n', 'latin1'), // family mismatch
    Buffer.from(`PROXY TCP4 203.0.113.9 127.0.0.1 40000 5000${' '.repeat(80)}\r\n`, 'latin1'), // > 107 bytes
    Buffer.concat([v2('203.0.113.9').subarray(0, 12), Buffer.from([0x31, 0x11, 0, 12])]), // version 3
  ];
  for (const header of malformed) {
    const res = await rawExchange(target, Buffer.concat([header, getV2()]), { from: BALANCER });
    assert.equal(res.closed, true, `must close: ${JSON.stringify(header.toString('latin1'))}`);
    assert.equal(res.data, '', `no answer for ${JSON.stringify(header.toString('latin1'))}: ${res.data}`);
  }
});

test('a trusted balancer that sends nothing is disconnected after the header timeout', async () => {
  const started = Date.now();
  const res = await rawExchange(target, Buffer.alloc(0), { from: BALANCER, timeoutMs: 8_000 });
  assert.equal(res.closed, true, 'the server must close an idle connection that never sent a PROXY header');
  assert.equal(res.data, '');
  assert.ok(Date.now() - started >= 4_000, 'not before the header timeout');
});

test('stopping the server does not wait for a balancer connection that has sent no header yet', async () => {
  const own = await startTestBerth({ proxyProtocol: true, trustedProxies: [BALANCER] });
  const held = await holdConnection(endpointOf(own.url), BALANCER);
  try {
    const started = Date.now();
    await own.stop();
    const took = Date.now() - started;
    assert.ok(took < 2_000, `stop took ${took} ms: an idle pre-header connection must not hold shutdown`);
    assert.equal(await held.closedWithin(1_000), true, 'the pre-header connection is closed on shutdown');
  } finally {
    held.socket.destroy();
  }
});
