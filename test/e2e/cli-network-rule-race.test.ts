// `berth network-rule add|remove` as real subprocesses racing each other against a real Berth: each is
// one atomic server-side operation, so 50 concurrent invocations keep exactly the expected rules, and
// the server's normalisation warnings reach the user's terminal.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiFor, createRegistry, uniqueName } from '../helpers/management.js';
import { startTestBerth, TEST_ADMIN_PASSWORD, type TestBerth } from '../helpers/server.js';
import { isolatedEnv, runBerth } from '../unit/cli/helpers/e2e.js';

let berth: TestBerth;
let env: Record<string, string>;
before(async () => {
  berth = await startTestBerth();
  env = {
    ...isolatedEnv().env,
    BERTH_SERVER: berth.managementUrl,
    BERTH_USERNAME: 'admin',
    BERTH_PASSWORD: TEST_ADMIN_PASSWORD,
  };
});
after(() => berth.stop());

const storedRules = async (name: string): Promise<string[]> => {
  const res = await apiFor(berth)('GET', `/api/registries/${name}`);
  return (res.body.properties.networkRuleSet.ipRules as { value: string }[]).map((r) => r.value).sort();
};

test('50 concurrent berth network-rule add/remove subprocesses keep exactly the expected set', async () => {
  const name = uniqueName('cliRace');
  const initial = Array.from({ length: 25 }, (_, i) => `10.50.0.${i}`);
  await createRegistry(apiFor(berth), name, 'Premium', {
    networkRuleSet: { ipRules: initial.map((value) => ({ action: 'Allow', value })) },
  });
  const fresh = Array.from({ length: 25 }, (_, i) => `10.51.0.${i}/32`);
  const runs = await Promise.all([
    ...initial.map((ip) =>
      runBerth(['network-rule', 'remove', '-n', name, '--ip-address', ip, '-o', 'none'], env),
    ),
    ...fresh.map((ip) =>
      runBerth(['network-rule', 'add', '-n', name, '--ip-address', ip, '-o', 'none'], env),
    ),
  ]);
  for (const run of runs) assert.equal(run.code, 0, run.stderr);
  // /32 is the canonical single address.
  assert.deepEqual(await storedRules(name), fresh.map((ip) => ip.replace('/32', '')).sort());
});

test('a normalised duplicate shows the server warning and exits 0; the list is unchanged', async () => {
  const name = uniqueName('cliDup');
  await createRegistry(apiFor(berth), name, 'Premium', {
    networkRuleSet: { ipRules: [{ action: 'Allow', value: '192.0.2.0/24' }] },
  });
  const run = await runBerth(['network-rule', 'add', '-n', name, '--ip-address', '192.0.2.55/24'], env);
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stderr,
    /WARNING: IP rule '192\.0\.2\.55\/24' has host bits set; it was read as '192\.0\.2\.0\/24'\./,
  );
  assert.match(run.stderr, /WARNING: IP rule '192\.0\.2\.55\/24' is already present as '192\.0\.2\.0\/24'\./);
  assert.deepEqual(await storedRules(name), ['192.0.2.0/24']);
  // Any spelling of a listed rule removes it.
  const removed = await runBerth(['network-rule', 'remove', '-n', name, '--ip-address', '192.0.2.1/24'], env);
  assert.equal(removed.code, 0, removed.stderr);
  assert.deepEqual(await storedRules(name), []);
});

test('berth network-rule add --expires-in --actions, list shows them, check --action push explains', async () => {
  const name = uniqueName('cliKinds');
  await createRegistry(apiFor(berth), name, 'Premium', { networkRuleSet: { defaultAction: 'Deny' } });
  const started = Date.now();
  const add = await runBerth(
    [
      'network-rule',
      'add',
      '-n',
      name,
      '--ip-address',
      '198.51.100.0/24',
      '--expires-in',
      '2h',
      '--actions',
      'pull',
    ],
    env,
  );
  assert.equal(add.code, 0, add.stderr);
  const list = await runBerth(['network-rule', 'list', '-n', name], env);
  const [rule] = (
    JSON.parse(list.stdout) as { ipRules: { ipAddressOrRange: string; actions: string; expiresAt: string }[] }
  ).ipRules;
  assert.equal(rule!.ipAddressOrRange, '198.51.100.0/24');
  assert.equal(rule!.actions, 'pull');
  const expiresIn = Date.parse(rule!.expiresAt) - started;
  assert.ok(expiresIn > 7_100_000 && expiresIn <= 7_260_000, `expires in ${expiresIn} ms`);
  const push = await runBerth(
    ['network-rule', 'check', '-n', name, '--ip', '198.51.100.7', '--action', 'push'],
    env,
  );
  assert.equal(push.code, 0, push.stderr);
  const answer = JSON.parse(push.stdout) as { allowed: boolean; reason: string; matchedRule: string };
  assert.deepEqual(
    { allowed: answer.allowed, reason: answer.reason, matchedRule: answer.matchedRule },
    { allowed: false, reason: 'actionNotAllowed', matchedRule: '198.51.100.0/24' },
  );
  const bad = await runBerth(
    ['network-rule', 'add', '-n', name, '--ip-address', '10.0.0.1', '--expires-in', 'soon'],
    env,
  );
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /duration such as 90s, 30m, 2h or 7d/);
});

test('berth ip-set create|update|show|list|delete and network-rule add --ip-set', async () => {
  const name = uniqueName('cliSets');
  await createRegistry(apiFor(berth), name, 'Premium', { networkRuleSet: { defaultAction: 'Deny' } });
  const created = await runBerth(
    ['ip-set', 'create', '-n', 'ci-runners', '--ranges', '192.0.2.0/24', '198.51.100.9'],
    env,
  );
  assert.equal(created.code, 0, created.stderr);
  assert.deepEqual((JSON.parse(created.stdout) as { ranges: string[] }).ranges, [
    '192.0.2.0/24',
    '198.51.100.9',
  ]);
  const add = await runBerth(['network-rule', 'add', '-n', name, '--ip-set', 'ci-runners'], env);
  assert.equal(add.code, 0, add.stderr);
  const check = async (ip: string) =>
    JSON.parse((await runBerth(['network-rule', 'check', '-n', name, '--ip', ip], env)).stdout) as {
      allowed: boolean;
      matchedIpSet?: string;
    };
  assert.deepEqual(await check('192.0.2.7'), {
    ip: '192.0.2.7',
    allowed: true,
    via: 'ipRule',
    matchedRule: '192.0.2.0/24',
    matchedIpSet: 'ci-runners',
  });
  const updated = await runBerth(['ip-set', 'update', '-n', 'ci-runners', '--ranges', '203.0.113.0/24'], env);
  assert.equal(updated.code, 0, updated.stderr);
  assert.equal((await check('192.0.2.7')).allowed, false);
  assert.equal((await check('203.0.113.1')).allowed, true);
  const list = await runBerth(['ip-set', 'list', '-o', 'tsv', '--query', '[].name'], env);
  assert.match(list.stdout, /^ci-runners$/m);
  const inUse = await runBerth(['ip-set', 'delete', '-n', 'ci-runners'], env);
  assert.notEqual(inUse.code, 0);
  assert.match(inUse.stderr, /remove those rules first/);
  assert.equal(
    (await runBerth(['network-rule', 'remove', '-n', name, '--ip-set', 'ci-runners'], env)).code,
    0,
  );
  const deleted = await runBerth(['ip-set', 'delete', '-n', 'ci-runners'], env);
  assert.equal(deleted.code, 0, deleted.stderr);
  const both = await runBerth(
    ['network-rule', 'add', '-n', name, '--ip-set', 'x', '--ip-address', '10.0.0.1'],
    env,
  );
  assert.equal(both.code, 2);
});
