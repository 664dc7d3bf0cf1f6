// One request must never kill, leak or hang the server (issue 7, findings 1, 2 and 6). The server
// runs as a child process here so that a crash is seen as an exit and memory is the server's own.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startChildBerth, type ChildBerth } from '../helpers/child-server.js';
import { digestOf, randomBlob } from '../helpers/oci.js';
import { RawConnection, requestHead } from '../helpers/raw-http.js';
import { ADMIN_AUTH } from '../helpers/server.js';

let berth: ChildBerth;
before(async () => {
  berth = await startChildBerth();
});
after(async () => {
  await berth.stop();
});

function assertAlive(what: string): void {
  assert.ok(
    berth.alive(),
    `the server died after ${what}: ${JSON.stringify(berth.exit())}\n${berth.stderr()}`,
  );
}

/** A normal request on a fresh connection still works: the server is up and serving. */
async function assertServing(what: string): Promise<void> {
  assertAlive(what);
  const res = await fetch(`${berth.url}/v2/`, { headers: { Authorization: ADMIN_AUTH } });
  assert.equal(res.status, 200, `GET /v2/ after ${what}`);
}

async function openUpload(repo: string): Promise<string> {
  const res = await fetch(`${berth.url}/v2/${repo}/blobs/uploads/`, {
    method: 'POST',
    headers: { Authorization: ADMIN_AUTH },
  });
  assert.equal(res.status, 202);
  return new URL(res.headers.get('location')!, berth.url).pathname;
}

test('a malformed chunked body on any endpoint is answered and the process lives on', async () => {
  for (const [method, path] of [
    ['GET', '/v2/'],
    ['PUT', '/v2/hard/repo/manifests/v1'],
    ['POST', `/v2/hard/repo/blobs/uploads/?digest=${digestOf('abc')}`],
    ['PATCH', '/v2/hard/repo/blobs/uploads/00000000-0000-0000-0000-000000000000'],
  ] as const) {
    for (let round = 0; round < 3; round++) {
      const conn = await RawConnection.open(berth.url);
      await conn.write(requestHead(method, path, ['Transfer-Encoding: chunked']) + 'zz\r\nabc\r\n0\r\n\r\n');
      const res = await conn.read(5000);
      conn.destroy();
      assert.ok(res === undefined || res.status < 500, `${method} ${path}: ${res?.status}`);
      await sleep(20);
      assertAlive(`a malformed chunked ${method} ${path}`);
    }
  }
  await assertServing('malformed chunked bodies');
});

test('a client hanging up mid-body of a monolithic POST does not kill the process', async () => {
  for (let round = 0; round < 6; round++) {
    const blob = randomBlob(1024 * 1024);
    const conn = await RawConnection.open(berth.url);
    const head = requestHead('POST', `/v2/hard/repo/blobs/uploads/?digest=${digestOf(blob)}`, [
      `Content-Length: ${blob.length}`,
    ]);
    // Gone at once (before the handler reads), or a moment later (while it reads).
    await conn.write(Buffer.concat([Buffer.from(head), blob.subarray(0, 300 * 1024)]));
    if (round % 2 === 1) await sleep(50);
    conn.destroy();
    await sleep(100);
    assertAlive('a hang-up mid monolithic POST');
  }
  await assertServing('hang-ups mid-body');
});

/** After an answer, the connection is either closed by the server (it said so) or still serves. */
async function assertUsableOrClosed(
  conn: RawConnection,
  res: { headers: Record<string, string> },
  what: string,
) {
  if (res.headers.connection === 'close') {
    assert.ok(await conn.waitClosed(10_000), `${what}: the connection said close but stayed open`);
    return;
  }
  await conn.write(requestHead('GET', '/v2/'));
  assert.equal(
    (await conn.read(5000))?.status,
    200,
    `${what}: the next request on the connection is answered`,
  );
}

test('an early answer closes a large unread body with Connection: close instead of hanging', async () => {
  // 404 unknown upload, with 5 MiB the handler never reads.
  const conn = await RawConnection.open(berth.url);
  const body = randomBlob(5 * 1024 * 1024);
  const path = '/v2/hard/repo/blobs/uploads/00000000-0000-0000-0000-000000000000';
  void conn.write(requestHead('PATCH', path, [`Content-Length: ${body.length}`]));
  void conn.write(body);
  const res = await conn.read(10_000);
  assert.equal(res?.status, 404);
  assert.equal(res.headers.connection, 'close');
  assert.ok(await conn.waitClosed(10_000), 'the connection is closed, not left hanging');
  await assertServing('an unread 5 MiB body');
});

test('a small unread body is drained and the next request on the connection is answered', async () => {
  const conn = await RawConnection.open(berth.url);
  const body = randomBlob(16 * 1024);
  for (let i = 0; i < 3; i++) {
    // GET /v2/ takes no body; a refused upload PATCH never reads one.
    await conn.write(requestHead('GET', '/v2/', [`Content-Length: ${body.length}`]));
    await conn.write(body);
    const first = await conn.read(5000);
    assert.equal(first?.status, 200, `request ${i} with an unread body`);
    assert.notEqual(first.headers.connection, 'close');
    await conn.write(
      requestHead('PATCH', '/v2/hard/repo/blobs/uploads/00000000-0000-0000-0000-000000000000', [
        `Content-Length: ${body.length}`,
      ]),
    );
    await conn.write(body);
    const second = await conn.read(5000);
    assert.equal(second?.status, 404, `refused PATCH ${i} on the same connection`);
  }
  await conn.write(requestHead('GET', '/v2/'));
  assert.equal((await conn.read(5000))?.status, 200, 'the connection still serves a plain GET');
  conn.destroy();
});

test('the loser of two concurrent PATCHes to one upload is answered, never left hanging', async () => {
  for (let round = 0; round < 5; round++) {
    const path = await openUpload('hard/race');
    const chunk = randomBlob(4 * 1024 * 1024);
    const patch = async () => {
      const conn = await RawConnection.open(berth.url);
      void conn.write(
        requestHead('PATCH', path, [
          `Content-Length: ${chunk.length}`,
          'Content-Type: application/octet-stream',
        ]),
      );
      void conn.write(chunk);
      const res = await conn.read(15_000);
      if (res) await assertUsableOrClosed(conn, res, `round ${round}: PATCH answered ${res.status}`);
      conn.destroy();
      return res?.status;
    };
    const statuses = (await Promise.all([patch(), patch()])).sort();
    assert.ok(statuses.includes(202), `round ${round}: one PATCH wins (${statuses.join(', ')})`);
    for (const status of statuses)
      assert.ok(status === 202 || status === 416, `round ${round}: ${statuses.join(', ')}`);
  }
});

test('memory stays flat over many requests answered before their body was read', async () => {
  const body = randomBlob(2 * 1024 * 1024);
  const path = '/v2/hard/repo/blobs/uploads/00000000-0000-0000-0000-000000000000';
  const round = async () => {
    const conn = await RawConnection.open(berth.url);
    // As curl sends a large body: ask first, send once told to continue, then read the answer.
    await conn.write(requestHead('PATCH', path, [`Content-Length: ${body.length}`, 'Expect: 100-continue']));
    let res = await conn.read(10_000);
    if (res?.status === 100) {
      void conn.write(body);
      res = await conn.read(10_000);
    }
    assert.equal(res?.status, 404);
    await conn.waitClosed(res.headers.connection === 'close' ? 5000 : 200);
    conn.destroy();
  };
  for (let i = 0; i < 20; i++) await round();
  await sleep(500);
  const before = berth.rssBytes();
  // 4 in parallel, 300 in all: ~600 MiB of bodies the server never needs.
  for (let i = 0; i < 75; i++) await Promise.all([round(), round(), round(), round()]);
  await sleep(500);
  const grown = berth.rssBytes() - before;
  process.stderr.write(
    `unread bodies: RSS ${Math.round(before / 1048576)} MiB -> +${Math.round(grown / 1048576)} MiB over 300\n`,
  );
  // Leaked bodies were ~1.5 MiB each (~450 MiB here); a generous bound that only a leak can break.
  assert.ok(grown < 120 * 1024 * 1024, `RSS grew by ${Math.round(grown / 1048576)} MiB over 300 requests`);
});

test('GET and HEAD of a manifest by an invalid tag are 404 MANIFEST_UNKNOWN; PUT keeps TAG_INVALID', async () => {
  const base = `${berth.url}/v2/hard/repo/manifests/.INVALID_MANIFEST_NAME`;
  const get = await fetch(base, { headers: { Authorization: ADMIN_AUTH } });
  assert.equal(get.status, 404);
  const body = (await get.json()) as { errors: { code: string }[] };
  assert.ok(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN'].includes(body.errors[0]!.code), body.errors[0]!.code);
  const head = await fetch(base, { method: 'HEAD', headers: { Authorization: ADMIN_AUTH } });
  assert.equal(head.status, 404);
  const put = await fetch(base, {
    method: 'PUT',
    headers: { Authorization: ADMIN_AUTH, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: '{}',
  });
  assert.equal(put.status, 400);
  assert.equal(((await put.json()) as { errors: { code: string }[] }).errors[0]!.code, 'TAG_INVALID');
});

test('a monolithic POST whose Content-Length is shorter than its body keeps its own reply', async () => {
  const blob = randomBlob(4096);
  const conn = await RawConnection.open(berth.url);
  await conn.write(
    requestHead('POST', `/v2/hard/short/blobs/uploads/?digest=${digestOf(blob)}`, [
      `Content-Length: ${blob.length}`,
    ]),
  );
  // The declared body, then bytes past it that are no HTTP request at all.
  await conn.write(Buffer.concat([blob, Buffer.from('this is not an HTTP request\r\n\r\n')]));
  const res = await conn.read(10_000);
  assert.equal(res?.status, 201, 'the POST is answered first');
  assert.equal(res.headers['docker-content-digest'], digestOf(blob));
  conn.destroy();
  await assertServing('a lying Content-Length');
});

test('SIGTERM is not held up by a stalled upload or an unread body', async () => {
  const stopping = await startChildBerth();
  const stalled = await RawConnection.open(stopping.url);
  await stalled.write(
    requestHead('POST', `/v2/hard/stall/blobs/uploads/?digest=${digestOf('x')}`, [
      'Content-Length: 1000000',
    ]) + 'only a few bytes',
  );
  const unread = await RawConnection.open(stopping.url);
  void unread.write(
    requestHead('PATCH', '/v2/hard/repo/blobs/uploads/00000000-0000-0000-0000-000000000000', [
      'Content-Length: 5000000',
    ]),
  );
  void unread.write(randomBlob(3 * 1024 * 1024));
  await sleep(200);
  stopping.process.kill('SIGTERM');
  // Bounded wait: the body timeouts (30 s) and keep-alive (65 s) must not decide when it exits.
  const exited = await Promise.race([
    new Promise<boolean>((resolve) => stopping.process.once('exit', () => resolve(true))),
    sleep(15_000).then(() => false),
  ]);
  stalled.destroy();
  unread.destroy();
  await stopping.stop();
  assert.ok(exited, 'the server exits after SIGTERM while a body is stalled');
});
