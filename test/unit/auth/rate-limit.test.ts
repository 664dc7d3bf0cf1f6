import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FailedSignInLimiter } from '../../../src/auth/rate-limit.js';
import { SecretBox } from '../../../src/auth/secret-box.js';

test('failures are counted per address and per account; past either limit the wait is the window', () => {
  const limiter = new FailedSignInLimiter({
    maxFailuresPerAddress: 3,
    maxFailuresPerAccount: 2,
    windowSeconds: 60,
  });
  assert.equal(limiter.retryAfter('10.0.0.1', 'alice'), undefined);
  limiter.fail('10.0.0.1', 'alice');
  assert.equal(limiter.retryAfter('10.0.0.1', 'alice'), undefined);
  limiter.fail('10.0.0.2', 'alice');
  const wait = limiter.retryAfter('10.0.0.3', 'alice');
  assert.ok(wait !== undefined && wait > 0 && wait <= 60);
  assert.equal(limiter.retryAfter('10.0.0.3', 'bob'), undefined);
  limiter.fail('10.0.0.9', 'u1');
  limiter.fail('10.0.0.9', 'u2');
  limiter.fail('10.0.0.9', 'u3');
  assert.ok(limiter.retryAfter('10.0.0.9', 'u4') !== undefined, 'the address is over its limit');
});

test('sealed secrets round-trip, differ each time, and fail under another key or when altered', () => {
  const box = SecretBox.withKey(Buffer.alloc(32, 1));
  const sealed = box.seal('s3cret');
  assert.ok(SecretBox.isSealed(sealed));
  assert.notEqual(box.seal('s3cret'), sealed);
  assert.equal(box.open(sealed), 's3cret');
  assert.throws(() => SecretBox.withKey(Buffer.alloc(32, 2)).open(sealed));
  const altered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA');
  assert.throws(() => box.open(altered));
});
