// Portal sessions: opaque tokens, idle and absolute expiry, sign-out, and a bounded number of them.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PortalSessions } from '../../src/auth/sessions.js';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

test('a token resolves to its identity until it has been idle too long', async () => {
  const c = clock();
  const sessions = new PortalSessions({ idleMs: 1000, absoluteMs: 10_000, maxSessions: 10 }, c.now);
  const { token, expiresAt } = await sessions.create('id-1');
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(expiresAt.getTime(), c.now() + 1000);
  c.advance(900);
  assert.equal(await sessions.resolve(token), 'id-1', 'use within the idle limit keeps it alive');
  c.advance(900);
  assert.equal(await sessions.resolve(token), 'id-1');
  c.advance(1001);
  assert.equal(await sessions.resolve(token), undefined);
  assert.equal(await sessions.count(), 0, 'an expired session is forgotten');
});

test('a session in constant use still ends at the absolute limit', async () => {
  const c = clock();
  const sessions = new PortalSessions({ idleMs: 1000, absoluteMs: 3000, maxSessions: 10 }, c.now);
  const { token } = await sessions.create('id-1');
  for (let i = 0; i < 5; i++) {
    c.advance(500);
    assert.equal(await sessions.resolve(token), 'id-1');
  }
  c.advance(600);
  assert.equal(await sessions.resolve(token), undefined);
});

test('sign-out revokes only that token; unknown tokens resolve to nothing', async () => {
  const sessions = new PortalSessions();
  const a = await sessions.create('id-1');
  const b = await sessions.create('id-1');
  assert.notEqual(a.token, b.token);
  await sessions.revoke(a.token);
  assert.equal(await sessions.resolve(a.token), undefined);
  assert.equal(await sessions.resolve(b.token), 'id-1');
  assert.equal(await sessions.resolve('not-a-token'), undefined);
});

test('at the cap the oldest session makes room for a new one', async () => {
  const c = clock();
  const sessions = new PortalSessions({ idleMs: 60_000, absoluteMs: 60_000, maxSessions: 3 }, c.now);
  const tokens: string[] = [];
  for (const id of ['a', 'b', 'c', 'd']) {
    c.advance(1);
    tokens.push((await sessions.create(id)).token);
  }
  assert.equal(await sessions.count(), 3);
  assert.deepEqual(await Promise.all(tokens.map((t) => sessions.resolve(t))), [undefined, 'b', 'c', 'd']);
});
