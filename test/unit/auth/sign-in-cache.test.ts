import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignInCache } from '../../../src/auth/sign-in-cache.js';

test('a verified credential is remembered for the TTL, and only that exact credential hits', () => {
  const cache = new SignInCache<string>(1000);
  const key = cache.keyOf('reg', 'user', 'secret');
  assert.notEqual(key, cache.keyOf('reg', 'user', 'secret2'));
  assert.notEqual(key, cache.keyOf('reg2', 'user', 'secret'));
  assert.ok(!key.includes('secret'), 'the secret is kept in the clear');
  cache.set(key, 'identity', cache.begin(), Infinity, 0);
  assert.equal(cache.get(key, 999), 'identity');
  assert.equal(cache.get(key, 1000), undefined, 'kept past its TTL');
  assert.equal(cache.get(key, 10), undefined, 'an expired entry came back');
});

test('an expiring password is remembered no longer than it is valid', () => {
  const cache = new SignInCache<string>(10_000);
  const key = cache.keyOf('reg', 'tok', 'pw');
  cache.set(key, 'token', cache.begin(), 500, 0);
  assert.equal(cache.get(key, 499), 'token');
  assert.equal(cache.get(key, 500), undefined);
  cache.set(key, 'token', cache.begin(), 0, 0);
  assert.equal(cache.get(key, 0), undefined, 'an already expired password was kept');
});

test('a change clears everything, and a verification that raced it is not kept', () => {
  const cache = new SignInCache<string>(10_000);
  const a = cache.keyOf('reg', 'a', 'pw');
  const b = cache.keyOf('reg', 'b', 'pw');
  cache.set(a, 'A', cache.begin());
  const started = cache.begin();
  cache.clear();
  assert.equal(cache.get(a), undefined);
  cache.set(b, 'B (read before the change)', started);
  assert.equal(cache.get(b), undefined, 'a verification that raced a change was kept');
  cache.set(b, 'B', cache.begin());
  assert.equal(cache.get(b), 'B');
});
