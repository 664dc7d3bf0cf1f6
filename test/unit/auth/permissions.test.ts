import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  allowedActions,
  allowsEverywhere,
  grant,
  parseScopeMapActions,
  permissionsFromRoles,
  permissionsFromRules,
  SYSTEM_SCOPE_MAPS,
} from '../../../src/auth/permissions.js';

test('roles map to actions as ACR documents them; only roles on this registry or * count', () => {
  const on = (role: Parameters<typeof permissionsFromRoles>[0][number]['role'], registry = 'reg') =>
    permissionsFromRoles([{ registry, role }], 'reg');
  assert.deepEqual(allowedActions(on('Owner'), 'repository', 'a').sort(), ['delete', 'pull', 'push']);
  assert.deepEqual(allowedActions(on('Reader'), 'repository', 'a'), ['pull']);
  assert.deepEqual(allowedActions(on('AcrPush'), 'repository', 'a').sort(), ['pull', 'push']);
  assert.deepEqual(allowedActions(on('AcrDelete'), 'repository', 'a'), ['delete']);
  assert.deepEqual(allowedActions(on('AcrDelete'), 'registry', 'catalog'), []);
  assert.deepEqual(allowedActions(on('Reader', '*'), 'registry', 'catalog'), ['*']);
  assert.deepEqual(allowedActions(on('Owner', 'other'), 'repository', 'a'), []);
});

test('scope map rules: exact names, prefixes ending in /*, and nothing else', () => {
  const perms = permissionsFromRules(
    parseScopeMapActions([
      'repositories/app/content/read',
      'repositories/team/*/content/write',
      'repositories/team/*/content/read',
    ]),
  );
  assert.deepEqual(allowedActions(perms, 'repository', 'app'), ['pull']);
  assert.deepEqual(allowedActions(perms, 'repository', 'app/sub'), []);
  assert.deepEqual(allowedActions(perms, 'repository', 'team/x/y').sort(), ['pull', 'push']);
  assert.deepEqual(allowedActions(perms, 'repository', 'team'), []);
  assert.deepEqual(allowedActions(perms, 'repository', 'teamx/y'), []);
  assert.equal(perms.catalog, false);
  assert.equal(allowsEverywhere(perms, 'pull'), false);
  for (const bad of [
    'repositories/*/content/read',
    'repositories/a*/content/read',
    'repositories/A/content/read',
    'repositories/a/content/all',
  ])
    assert.throws(() => parseScopeMapActions([bad]), bad);
});

test('system scope maps cover every repository', () => {
  const admin = permissionsFromRules(
    parseScopeMapActions(SYSTEM_SCOPE_MAPS._repositories_admin!.actions, true),
  );
  assert.deepEqual(allowedActions(admin, 'repository', 'any/thing').sort(), ['delete', 'pull', 'push']);
  assert.equal(admin.catalog, true);
  assert.equal(allowsEverywhere(admin, 'pull'), true);
  const pull = permissionsFromRules(
    parseScopeMapActions(SYSTEM_SCOPE_MAPS._repositories_pull!.actions, true),
  );
  assert.deepEqual(allowedActions(pull, 'repository', 'x'), ['pull']);
});

test("'*' on a repository asks for every action, and gets those allowed", () => {
  const pusher = permissionsFromRoles([{ registry: 'reg', role: 'AcrPush' }], 'reg');
  assert.deepEqual(grant(pusher, [{ type: 'repository', name: 'a', actions: ['*'] }]), [
    { type: 'repository', name: 'a', actions: ['pull', 'push'] },
  ]);
});

test('a grant is the intersection of what was asked and what is allowed', () => {
  const reader = permissionsFromRoles([{ registry: '*', role: 'Reader' }], 'reg');
  assert.deepEqual(
    grant(reader, [
      { type: 'repository', name: 'a', actions: ['pull', 'push'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
      { type: 'registry', name: 'other', actions: ['*'] },
      { type: 'plugin', name: 'x', actions: ['pull'] },
    ]),
    [
      { type: 'repository', name: 'a', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
      { type: 'registry', name: 'other', actions: [] },
      { type: 'plugin', name: 'x', actions: [] },
    ],
  );
});
