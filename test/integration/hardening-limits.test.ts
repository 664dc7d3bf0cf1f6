// The limits that keep one client from exhausting the server (issue 7, finding 4): connections per
// listener and per client, header timeout (408), body idle timeout and minimum rate (408), upload
// sessions per client and per registry (429). Latency under each abuse is measured in bench/abuse.ts.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RawConnection, requestHead } from '../helpers/raw-http.js';
import { send } from '../helpers/net.js';
import { ADMIN_AUTH, startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth({
    limits: {
      maxConnections: 12,
      maxConnectionsPerClient: 5,
      managementMaxConnections: 4,
      headerTimeoutMs: 1000,
      bodyIdleTimeoutMs: 2000,
      bodyMinBytesPerSecond: 2000,
      maxUploadSessionsPerClient: 3,
      maxUploadSessionsPerRegistry: 5,
    },
  });
});
after(async () => {
  await berth.stop();
});

function assertOciError(body: Buffer, code: string): void {
  const parsed = JSON.parse(body.toString()) as { errors: { code: string }[] };
  assert.equal(parsed.errors[0]!.code, code, body.toString());
}

async function holdConnections(count: number, from: string): Promise<RawConnection[]> {
  const held: RawConnection[] = [];
  for (let i = 0; i < count; i++) held.push(await RawConnection.open(berth.url, from));
  // Give the server the moment it needs to count them.
  await sleep(50);
  return held;
}

test('a client past its connection cap is told 429 with Retry-After; other clients are not', async () => {
  const held = await holdConnections(5, '127.0.0.2');
  try {
    const extra = await RawConnection.open(berth.url, '127.0.0.2');
    await extra.write(requestHead('GET', '/v2/'));
    const res = await extra.read(5000);
    assert.equal(res?.status, 429);
    assert.equal(res.headers['retry-after'], '1');
    assertOciError(res.body, 'TOOMANYREQUESTS');
    extra.destroy();
    const other = await send(berth.url, '/v2/', {
      from: '127.0.0.3',
      headers: { Authorization: ADMIN_AUTH },
    });
    assert.equal(other.status, 200, 'another client address is still served');
  } finally {
    for (const conn of held) conn.destroy();
  }
  await sleep(50);
  const again = await send(berth.url, '/v2/', { from: '127.0.0.2', headers: { Authorization: ADMIN_AUTH } });
  assert.equal(again.status, 200, 'once its connections close, the client is served again');
});

test('a listener past its connection cap answers 429 and recovers when connections close', async () => {
  const held = [
    ...(await holdConnections(4, '127.0.0.4')),
    ...(await holdConnections(4, '127.0.0.5')),
    ...(await holdConnections(4, '127.0.0.6')),
  ];
  try {
    const extra = await RawConnection.open(berth.url, '127.0.0.7');
    await extra.write(requestHead('GET', '/v2/'));
    const res = await extra.read(5000);
    assert.equal(res?.status, 429);
    assertOciError(res.body, 'TOOMANYREQUESTS');
    extra.destroy();
  } finally {
    for (const conn of held) conn.destroy();
  }
  await sleep(50);
  const res = await send(berth.url, '/v2/', { from: '127.0.0.7', headers: { Authorization: ADMIN_AUTH } });
  assert.equal(res.status, 200);
});

test('headers that never finish get 408 with an OCI body; garbage stays 400', async () => {
  const slow = await RawConnection.open(berth.url);
  await slow.write('GET /v2/ HTTP/1.1\r\nHost: localhost\r\n');
  const res = await slow.read(15_000);
  assert.equal(res?.status, 408);
  assertOciError(res.body, 'UNSUPPORTED');
  assert.ok(await slow.waitClosed(5000));
  const garbage = await RawConnection.open(berth.url);
  await garbage.write('\x00\x01 not http at all\r\n\r\n');
  const bad = await garbage.read(5000);
  assert.equal(bad?.status, 400);
  garbage.destroy();
});

async function openUpload(
  from: string,
): Promise<{ status: number; location?: string; headers: Record<string, unknown>; text: string }> {
  const res = await send(berth.url, '/v2/limits/repo/blobs/uploads/', {
    method: 'POST',
    from,
    headers: { Authorization: ADMIN_AUTH },
  });
  return { status: res.status, location: res.headers.location, headers: res.headers, text: res.text };
}

async function cancelUpload(location: string, from: string): Promise<void> {
  await send(berth.url, location, { method: 'DELETE', from, headers: { Authorization: ADMIN_AUTH } });
}

test('a body that stops arriving is cut off with 408 and the connection closed', async () => {
  const upload = await openUpload('127.0.0.8');
  assert.equal(upload.status, 202);
  const conn = await RawConnection.open(berth.url);
  await conn.write(requestHead('PATCH', upload.location!, ['Content-Length: 1000']) + 'just ten b');
  const res = await conn.read(20_000);
  assert.equal(res?.status, 408);
  assert.equal(res.headers.connection, 'close');
  assertOciError(res.body, 'BLOB_UPLOAD_INVALID');
  conn.destroy();
  await cancelUpload(upload.location!, '127.0.0.8');
});

test('a body dripping below the minimum rate is cut off with 408', async () => {
  const upload = await openUpload('127.0.0.9');
  assert.equal(upload.status, 202);
  const conn = await RawConnection.open(berth.url);
  await conn.write(requestHead('PATCH', upload.location!, ['Content-Length: 1000000']));
  let res;
  // 100 bytes every 250 ms is 400 bytes/s, below the 2000 configured; bounded at 60 rounds (15 s).
  for (let round = 0; round < 60 && !res; round++) {
    await conn.write(Buffer.alloc(100, 0x61));
    res = await conn.read(250);
  }
  assert.equal(res?.status, 408);
  assertOciError(res.body, 'BLOB_UPLOAD_INVALID');
  conn.destroy();
  await cancelUpload(upload.location!, '127.0.0.9');
});

test('upload sessions are capped per client and per registry with 429 TOOMANYREQUESTS and Retry-After', async () => {
  const mine = [];
  for (let i = 0; i < 3; i++) mine.push(await openUpload('127.0.0.10'));
  for (const upload of mine) assert.equal(upload.status, 202);
  const over = await openUpload('127.0.0.10');
  assert.equal(over.status, 429);
  assert.ok(Number(over.headers['retry-after']) > 0);
  assertOciError(Buffer.from(over.text), 'TOOMANYREQUESTS');
  // Finishing (here: cancelling) one frees a place.
  await cancelUpload(mine[0]!.location!, '127.0.0.10');
  const freed = await openUpload('127.0.0.10');
  assert.equal(freed.status, 202);
  // Registry-wide: 3 open from .10, two more from .11 reach the registry's 5.
  assert.equal((await openUpload('127.0.0.11')).status, 202);
  assert.equal((await openUpload('127.0.0.11')).status, 202);
  const full = await openUpload('127.0.0.12');
  assert.equal(full.status, 429);
  assertOciError(Buffer.from(full.text), 'TOOMANYREQUESTS');
});

test('the management listener caps its connections too', async () => {
  const held: RawConnection[] = [];
  for (let i = 0; i < 4; i++) held.push(await RawConnection.open(berth.managementUrl));
  await sleep(50);
  try {
    const extra = await RawConnection.open(berth.managementUrl);
    assert.ok(await extra.waitClosed(5000), 'a connection past the cap is closed at once');
  } finally {
    for (const conn of held) conn.destroy();
  }
  await sleep(50);
  const res = await fetch(`${berth.managementUrl}/api/openapi.json`);
  assert.equal(res.status, 200);
});

test('a management body over 1 MiB is 413 in the ARM shape', async () => {
  const res = await fetch(`${berth.managementUrl}/api/registries/toolarge`, {
    method: 'PUT',
    headers: { Authorization: ADMIN_AUTH, 'Content-Type': 'application/json' },
    body: JSON.stringify({ location: 'x'.repeat(1024 * 1024 + 10) }),
  });
  assert.equal(res.status, 413);
  const body = (await res.json()) as { error: { code: string } };
  assert.equal(body.error.code, 'RequestEntityTooLarge');
});
