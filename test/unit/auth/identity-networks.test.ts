// The per-identity cache of address ranges that Bearer JWT uses are checked against: one load per
// identity while fresh, a token's change drops its entry, and a load racing a change is not kept.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdentityNetworkCache, type IdentityNetworks } from '../../../src/auth/identity-networks.js';
import type { IdentityRef } from '../../../src/auth/tokens.js';
import { compileIpRules } from '../../../src/network/index.js';

const token = (id: string): IdentityRef => ({ kind: 'token', id, name: id });

test('an identity is loaded once while fresh; admin and anonymous are never loaded', async () => {
  const loads: string[] = [];
  const cache = new IdentityNetworkCache(async (registry, ref) => {
    loads.push(`${registry}/${ref.kind}/${ref.id}`);
    return ref.id === 'limited' ? compileIpRules(['127.0.0.2']) : undefined;
  });
  for (let i = 0; i < 3; i++) {
    assert.deepEqual((await cache.get('r1', token('limited')))?.sources, ['127.0.0.2']);
    assert.equal(await cache.get('r1', token('open')), undefined);
    await cache.get('r1', { kind: 'apiKey', id: 'k1', name: 'key' });
    await cache.get('r2', { kind: 'apiKey', id: 'k1', name: 'key' });
    assert.equal(await cache.get('r1', { kind: 'admin', id: 'r1', name: 'r1' }), undefined);
    assert.equal(await cache.get('r1', { kind: 'anonymous', id: '', name: '<anonymous>' }), undefined);
  }
  assert.deepEqual(loads, ['r1/token/limited', 'r1/token/open', 'r1/apiKey/k1']);
});

test("a token's change is seen by the next get, and a load racing the change is not cached", async () => {
  let ranges = ['127.0.0.2'];
  let gate: Promise<void> | undefined;
  let loads = 0;
  const cache = new IdentityNetworkCache(async () => {
    loads++;
    const seen = ranges;
    await gate;
    return compileIpRules(seen);
  });
  const valuesOf = (m: IdentityNetworks) => m?.sources;
  assert.deepEqual(valuesOf(await cache.get('r', token('ci'))), ['127.0.0.2']);
  ranges = ['127.0.0.3'];
  cache.forgetToken('r', 'ci');
  assert.deepEqual(valuesOf(await cache.get('r', token('ci'))), ['127.0.0.3']);

  // A load reads the old ranges, then the token changes before it finishes: its answer is not kept.
  cache.forgetToken('r', 'ci');
  let open!: () => void;
  gate = new Promise((resolve) => (open = resolve));
  const racing = cache.get('r', token('ci'));
  await new Promise((resolve) => setImmediate(resolve));
  ranges = ['127.0.0.4'];
  cache.forgetToken('r', 'ci');
  open();
  assert.deepEqual(valuesOf(await racing), ['127.0.0.3']);
  gate = undefined;
  assert.deepEqual(valuesOf(await cache.get('r', token('ci'))), ['127.0.0.4']);
  assert.equal(loads, 4);
});
