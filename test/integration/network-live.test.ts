// Rule changes take effect at once: on connections that are already open, and on uploads in flight.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, beforeEach, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  expectDenied,
  openNetwork,
  send,
  setNetwork,
  singleSocketAgent,
  streamRequest,
  type NetResponse,
} from '../helpers/net.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth();
});
after(() => berth.stop());
beforeEach(() => openNetwork(berth));

const octet = (length: number, extra: Record<string, string> = {}) => ({
  'Content-Type': 'application/octet-stream',
  'Content-Length': String(length),
  ...extra,
});

test('a rule change applies to the next request on an already-open keep-alive connection, both ways', async () => {
  const agent = singleSocketAgent();
  try {
    const from = '127.0.0.2';
    const first = await send(berth.url, '/v2/', { from, agent });
    assert.equal(first.status, 200);

    await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.9'] });
    const refused = await send(berth.url, '/v2/', { from, agent });
    assert.equal(refused.localPort, first.localPort, 'the second request must reuse the first socket');
    expectDenied(refused, from, 'ipNotAllowed');

    await setNetwork(berth, { ipRules: ['127.0.0.9', '127.0.0.2/32'] });
    const again = await send(berth.url, '/v2/', { from, agent });
    assert.equal(again.localPort, first.localPort, 'a refusal must not close the keep-alive connection');
    assert.equal(again.status, 200, again.text);

    await setNetwork(berth, { publicNetworkAccess: 'Disabled' });
    const disabled = await send(berth.url, '/v2/', { from, agent });
    assert.equal(disabled.localPort, first.localPort);
    expectDenied(disabled, from, 'publicNetworkAccessDisabled');

    await setNetwork(berth, { publicNetworkAccess: 'Enabled', defaultAction: 'Allow', ipRules: [] });
    const open = await send(berth.url, '/v2/', { from, agent });
    assert.equal(open.localPort, first.localPort);
    assert.equal(open.status, 200);
  } finally {
    agent.destroy();
  }
});

test('removing the address of an upload in flight cuts it off; only what was accepted before remains', async () => {
  const uploader = '127.0.0.2';
  const operator = '127.0.0.4';
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: [uploader, operator] });

  const started = await send(berth.url, '/v2/cut/off/blobs/uploads/', { method: 'POST', from: uploader });
  assert.equal(started.status, 202, started.text);
  const uploadPath = new URL(started.headers.location!, berth.url).pathname;

  // A first chunk that completes: this much is accepted.
  const accepted = randomBytes(1000);
  const firstChunk = await send(berth.url, uploadPath, {
    method: 'PATCH',
    from: uploader,
    headers: octet(accepted.length, { 'Content-Range': `0-${accepted.length - 1}` }),
    body: accepted,
  });
  assert.equal(firstChunk.status, 202, firstChunk.text);
  assert.equal(firstChunk.headers.range, '0-999');

  // A second chunk declared at 256 KiB, streamed slowly; the rule goes away after 64 KiB.
  const piece = randomBytes(16 * 1024);
  const total = 16 * piece.length;
  const stream = streamRequest(berth.url, uploadPath, {
    method: 'PATCH',
    from: uploader,
    headers: octet(total, { 'Content-Range': `1000-${1000 + total - 1}` }),
  });
  for (let i = 0; i < 4; i++) {
    await stream.write(piece);
    await sleep(30);
  }
  assert.equal(stream.settled(), false, 'the upload must still be in flight when the rule changes');
  await setNetwork(berth, { ipRules: [operator] });

  // Keep trickling the rest; the server must not wait for it, and must not accept it.
  for (let i = 4; i < 16 && !stream.settled(); i++) {
    await stream.write(piece);
    await sleep(30);
  }
  stream.end();
  assertCutOff(await stream.result);

  // The next request from that address is refused; the operator still sees the accepted offset.
  const next = await send(berth.url, uploadPath, {
    method: 'PATCH',
    from: uploader,
    headers: octet(piece.length, { 'Content-Range': `1000-${1000 + piece.length - 1}` }),
    body: piece,
  });
  expectDenied(next, uploader, 'ipNotAllowed');
  const status = await send(berth.url, uploadPath, { from: operator });
  assert.equal(status.status, 204, status.text);
  assert.equal(status.headers.range, '0-999', 'the cut-off chunk must not advance the upload');

  // The upload can still be finished from an allowed address, and the blob holds exactly what was accepted.
  const tail = Buffer.from('tail');
  const blob = Buffer.concat([accepted, tail]);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const done = await send(berth.url, `${uploadPath}?digest=${digest}`, {
    method: 'PUT',
    from: operator,
    headers: octet(tail.length, { 'Content-Range': `1000-${1000 + tail.length - 1}` }),
    body: tail,
  });
  assert.equal(done.status, 201, done.text);
  const fetched = await send(berth.url, `/v2/cut/off/blobs/${digest}`, { from: operator });
  assert.equal(fetched.status, 200);
  assert.ok(fetched.body.equals(blob), 'the committed blob must hold only the accepted bytes and the tail');
});

test('an upload in flight from an address that stays allowed is not disturbed by a rule change', async () => {
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.2', '127.0.0.3'] });
  const started = await send(berth.url, '/v2/undisturbed/blobs/uploads/', {
    method: 'POST',
    from: '127.0.0.2',
  });
  const uploadPath = new URL(started.headers.location!, berth.url).pathname;
  const piece = randomBytes(8 * 1024);
  const stream = streamRequest(berth.url, uploadPath, {
    method: 'PATCH',
    from: '127.0.0.2',
    headers: octet(4 * piece.length),
  });
  await stream.write(piece);
  await sleep(30);
  // Another address loses access; this upload's address keeps it.
  await setNetwork(berth, { ipRules: ['127.0.0.2'] });
  for (let i = 1; i < 4; i++) await stream.write(piece);
  stream.end();
  const outcome = await stream.result;
  assert.equal(outcome.response?.status, 202, outcome.error?.message ?? outcome.response?.text);
  assert.equal(outcome.response.headers.range, `0-${4 * piece.length - 1}`);
});

test('an upload allowed only by the trusted-service bypass is cut off when the bypass is switched off', async () => {
  const created = await fetch(`${berth.managementUrl}/api/apiKeys`, {
    method: 'POST',
    headers: {
      Authorization: `Basic ${Buffer.from('admin:test-admin-password').toString('base64')}`,
      'Content-Type': 'application/json',
    },
    body: JSON.stringify({ name: 'uploader-service', role: 'Contributor', trustedService: true }),
  });
  assert.equal(created.status, 201);
  const { key } = (await created.json()) as { key: string };
  const auth = { Authorization: `Bearer ${key}` };
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: [], networkRuleBypassOptions: 'AzureServices' });
  const started = await send(berth.url, '/v2/bypass/blobs/uploads/', {
    method: 'POST',
    from: '127.0.0.3',
    headers: auth,
  });
  assert.equal(started.status, 202, started.text);
  const uploadPath = new URL(started.headers.location!, berth.url).pathname;
  const piece = randomBytes(8 * 1024);
  const stream = streamRequest(berth.url, uploadPath, {
    method: 'PATCH',
    from: '127.0.0.3',
    headers: { ...auth, ...octet(8 * piece.length) },
  });
  await stream.write(piece);
  await sleep(30);
  await setNetwork(berth, { networkRuleBypassOptions: 'None' });
  for (let i = 1; i < 8 && !stream.settled(); i++) {
    await stream.write(piece);
    await sleep(30);
  }
  stream.end();
  assertCutOff(await stream.result);
  const status = await send(berth.url, uploadPath, { from: '127.0.0.3', headers: auth });
  expectDenied(status, '127.0.0.3', 'ipNotAllowed');
});

test('a cut-off upload is answered 403 DENIED with Connection: close', async () => {
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: ['127.0.0.2'] });
  const started = await send(berth.url, '/v2/answer/blobs/uploads/', { method: 'POST', from: '127.0.0.2' });
  const uploadPath = new URL(started.headers.location!, berth.url).pathname;
  const piece = randomBytes(8 * 1024);
  const stream = streamRequest(berth.url, uploadPath, {
    method: 'PATCH',
    from: '127.0.0.2',
    headers: octet(8 * piece.length),
  });
  await stream.write(piece);
  await sleep(30);
  await setNetwork(berth, { ipRules: [] });
  for (let i = 1; i < 8 && !stream.settled(); i++) {
    await stream.write(piece);
    await sleep(30);
  }
  stream.end();
  const outcome = await stream.result;
  assert.ok(outcome.response, `expected a 403 answer, got ${outcome.error?.message}`);
  expectDenied(outcome.response, '127.0.0.2', 'ipNotAllowed');
  assert.equal(outcome.response.headers.connection, 'close');
});

/** A cut-off upload fails: an error status (never 2xx) or a closed connection. */
function assertCutOff(outcome: { response?: NetResponse; error?: Error }): void {
  if (outcome.response) {
    assert.ok(
      outcome.response.status >= 400,
      `the cut-off upload must fail, got ${outcome.response.status}: ${outcome.response.text}`,
    );
  } else {
    assert.match(String((outcome.error as NodeJS.ErrnoException).code), /ECONNRESET|EPIPE/);
  }
}
