import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { covers, formatScope, parseScope, parseScopes } from '../../../src/auth/scope.js';

test('parses the scope grammar, including names with a port-like colon and plugin classes', () => {
  assert.deepEqual(parseScope('repository:samalba/my-app:pull,push'), {
    type: 'repository',
    name: 'samalba/my-app',
    actions: ['pull', 'push'],
  });
  assert.deepEqual(parseScope('repository:localhost:5000/app:pull'), {
    type: 'repository',
    name: 'localhost:5000/app',
    actions: ['pull'],
  });
  assert.deepEqual(parseScope('repository(plugin):app:pull'), {
    type: 'repository',
    name: 'app',
    actions: ['pull'],
  });
  assert.deepEqual(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] });
  for (const bad of [
    '',
    'repository',
    'repository:app',
    ':app:pull',
    'repository::pull',
    'repository:app:',
    'Repo:app:pull',
  ])
    assert.equal(parseScope(bad), undefined, bad);
});

test('several scopes, space-separated or repeated, merge per resource and drop malformed ones', () => {
  assert.deepEqual(parseScopes(['repository:a:pull repository:b:push', 'repository:a:push', 'junk']), [
    { type: 'repository', name: 'a', actions: ['pull', 'push'] },
    { type: 'repository', name: 'b', actions: ['push'] },
  ]);
  assert.equal(
    parseScopes([Array.from({ length: 500 }, (_, i) => `repository:r${i}:pull`).join(' ')]).length,
    64,
  );
});

test('format and parse round-trip; covers needs every action', () => {
  fc.assert(
    fc.property(
      fc.stringMatching(/^[a-z0-9]+(\/[a-z0-9]+){0,3}$/),
      fc.uniqueArray(fc.constantFrom('pull', 'push', 'delete'), { minLength: 1 }),
      (name, actions) => {
        const access = { type: 'repository', name, actions };
        assert.deepEqual(parseScope(formatScope(access)), access);
        assert.ok(covers([access], { type: 'repository', name, actions: [actions[0]!] }));
        assert.equal(covers([{ ...access, actions: [] }], access), false);
        assert.equal(covers([access], { type: 'repository', name: `${name}x`, actions }), false);
      },
    ),
  );
});
