import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inScope } from '../../src/management/webhooks.js';

test("webhook scope follows ACR: empty, 'repo:tag', 'repo:*', bare 'repo' meaning repo:latest", () => {
  const at = (repository: string, tag?: string) => ({ repository, ...(tag ? { tag } : {}) });
  assert.equal(inScope('', at('any', 'x')), true);
  assert.equal(inScope('app:v1', at('app', 'v1')), true);
  assert.equal(inScope('app:v1', at('app', 'v2')), false);
  assert.equal(inScope('app:v1', at('other', 'v1')), false);
  assert.equal(inScope('app:*', at('app', 'anything')), true);
  assert.equal(inScope('app', at('app', 'latest')), true);
  assert.equal(inScope('app', at('app', 'v1')), false);
  assert.equal(inScope('team/*:*', at('team/app', 'v1')), true);
  assert.equal(inScope('team/*:*', at('other/app', 'v1')), false);
  // A delete by digest names no tag: the repository decides.
  assert.equal(inScope('app:v1', at('app')), true);
  // Events without a repository (networkDenied) are never filtered out by scope.
  assert.equal(inScope('app:v1', {}), true);
  // Glob characters other than * are literal.
  assert.equal(inScope('a.p:*', at('axp', 'v1')), false);
});
