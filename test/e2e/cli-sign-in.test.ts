// The sign-in commands of the `berth` CLI as a subprocess against a real server: role assignments,
// scope maps, tokens and their passwords, the sign-in log, and `berth login --name --expose-token`.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fetchToken, bearerToken } from '../helpers/auth.js';
import { dataPlane } from '../helpers/management.js';
import { runOk, run } from '../helpers/e2e.js';
import { startTestBerth, TEST_ADMIN_PASSWORD, type TestBerth } from '../helpers/server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'src', 'cli', 'index.ts');
let berth: TestBerth;
let configDir: string;

const cli = (args: string[]) =>
  runOk(process.execPath, ['--import', 'tsx', CLI, ...args, '--output', 'json'], {
    env: { BERTH_CONFIG_DIR: configDir },
    cwd: ROOT,
    timeoutMs: 60_000,
  });
const json = async (args: string[]) =>
  JSON.parse((await cli(args)).stdout) as Record<string, unknown> & unknown[];

before(async () => {
  berth = await startTestBerth();
  configDir = mkdtempSync(join(tmpdir(), 'berth-cli-signin-'));
  await cli(['login', '--server', berth.managementUrl, '-u', 'admin', '-p', TEST_ADMIN_PASSWORD]);
});
after(async () => {
  await berth.stop();
  rmSync(configDir, { recursive: true, force: true });
});

test('scope-map create/update/show/list/delete and token create/list/show/update/credential/delete', async () => {
  const map = await json([
    'scope-map',
    'create',
    '-n',
    'cimap',
    '-r',
    'default',
    '--repository',
    'app',
    'content/read',
    'content/write',
    '--description',
    'ci',
  ]);
  assert.deepEqual((map.properties as { actions: string[] }).actions, [
    'repositories/app/content/read',
    'repositories/app/content/write',
  ]);
  const updated = await json([
    'scope-map',
    'update',
    '-n',
    'cimap',
    '-r',
    'default',
    '--add-repository',
    'lib/*',
    'content/read',
    '--remove-repository',
    'app',
    'content/write',
  ]);
  assert.deepEqual((updated.properties as { actions: string[] }).actions, [
    'repositories/app/content/read',
    'repositories/lib/*/content/read',
  ]);
  const maps = (await json(['scope-map', 'list', '-r', 'default'])) as unknown as { name: string }[];
  assert.ok(maps.some((m) => m.name === '_repositories_admin') && maps.some((m) => m.name === 'cimap'));

  const created = await json([
    'token',
    'create',
    '-n',
    'citoken',
    '-r',
    'default',
    '--scope-map',
    'cimap',
    '--expiration-in-days',
    '30',
  ]);
  const passwords = (created.credentials as { passwords: { name: string; value: string; expiry: string }[] })
    .passwords;
  assert.deepEqual(
    passwords.map((p) => p.name),
    ['password1', 'password2'],
  );
  assert.ok(passwords.every((p) => p.value.length >= 22 && Date.parse(p.expiry) > Date.now()));
  // The password works on the data plane, for what the scope map allows.
  const token = await fetchToken(berth, 'default', 'citoken', passwords[0]!.value, [
    'repository:lib/x:pull,push',
  ]);
  const claims = JSON.parse(Buffer.from(token.token.split('.')[1]!, 'base64url').toString()) as {
    access: { actions: string[] }[];
  };
  assert.deepEqual(claims.access[0]!.actions, ['pull']);
  assert.equal(
    (
      await dataPlane(berth, 'default', 'GET', '/v2/', {
        headers: { Authorization: bearerToken(token.token) },
      })
    ).status,
    200,
  );

  const fromRepo = await json([
    'token',
    'create',
    '-n',
    'quicktok',
    '-r',
    'default',
    '--repository',
    'web',
    'content/read',
    '--no-passwords',
    '--allowed-ip-ranges',
    '127.0.0.2/32',
    '10.0.0.0/8',
  ]);
  assert.match(String((fromRepo.properties as { scopeMapId: string }).scopeMapId), /quicktok-scope-map$/);
  assert.equal(fromRepo.credentials, undefined);
  const rangesOf = (t: Record<string, unknown>) =>
    (t.properties as { allowedIpRanges?: string[] }).allowedIpRanges;
  assert.deepEqual(rangesOf(fromRepo), ['127.0.0.2', '10.0.0.0/8']);
  const updateQuick = (...args: string[]) =>
    json(['token', 'update', '-n', 'quicktok', '-r', 'default', ...args]);
  assert.deepEqual(rangesOf(await updateQuick('--allowed-ip-ranges', '127.0.0.3')), ['127.0.0.3']);
  assert.deepEqual(rangesOf(await updateQuick('--status', 'enabled')), ['127.0.0.3']);
  const cleared = await updateQuick('--no-allowed-ip-ranges');
  assert.equal(rangesOf(cleared), undefined);
  const shown = await json(['token', 'show', '-n', 'citoken', '-r', 'default']);
  assert.ok(!JSON.stringify(shown).includes(passwords[0]!.value));
  const disabled = await json(['token', 'update', '-n', 'citoken', '-r', 'default', '--status', 'disabled']);
  assert.equal((disabled.properties as { status: string }).status, 'disabled');
  const regenerated = await json([
    'token',
    'credential',
    'generate',
    '-n',
    'citoken',
    '-r',
    'default',
    '--password2',
  ]);
  assert.deepEqual(
    (regenerated.passwords as { name: string }[]).map((p) => p.name),
    ['password2'],
  );
  const tokens = (await json(['token', 'list', '-r', 'default'])) as unknown as { name: string }[];
  assert.deepEqual(tokens.map((t) => t.name).sort(), ['citoken', 'quicktok']);
  const refused = await run(
    process.execPath,
    ['--import', 'tsx', CLI, 'scope-map', 'delete', '-n', 'cimap', '-r', 'default'],
    {
      env: { BERTH_CONFIG_DIR: configDir },
      cwd: ROOT,
    },
  );
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /used by token/);
  await cli(['token', 'delete', '-n', 'citoken', '-r', 'default']);
  await cli(['scope-map', 'delete', '-n', 'cimap', '-r', 'default']);
});

test('role assignment create/list/delete, audit sign-ins, and login --name --expose-token', async () => {
  const created = await fetch(`${berth.managementUrl}/api/apiKeys`, {
    method: 'POST',
    headers: {
      Authorization: `Basic ${Buffer.from(`admin:${TEST_ADMIN_PASSWORD}`).toString('base64')}`,
      'Content-Type': 'application/json',
    },
    body: JSON.stringify({ name: 'ci-key', role: 'Reader', registry: 'default' }),
  });
  assert.equal(created.status, 201);
  await cli([
    'role',
    'assignment',
    'create',
    '--assignee',
    'ci-key',
    '--role',
    'AcrPush',
    '--registry',
    'default',
  ]);
  const listed = (await json([
    'role',
    'assignment',
    'list',
    '--registry',
    '/registries/default',
  ])) as unknown as {
    principalName: string;
    role: string;
  }[];
  assert.ok(listed.some((a) => a.principalName === 'ci-key' && a.role === 'AcrPush'));
  assert.ok(listed.some((a) => a.principalName === 'ci-key' && a.role === 'Reader'));
  await cli([
    'role',
    'assignment',
    'delete',
    '--assignee',
    'ci-key',
    '--role',
    'AcrPush',
    '--registry',
    'default',
  ]);
  const after = (await json(['role', 'assignment', 'list', '--registry', 'default'])) as unknown as {
    role: string;
    principalName: string;
  }[];
  assert.ok(!after.some((a) => a.principalName === 'ci-key' && a.role === 'AcrPush'));

  const exposed = await json(['login', '--name', 'default', '--expose-token']);
  assert.equal(exposed.username, '00000000-0000-0000-0000-000000000000');
  assert.equal(exposed.loginServer, new URL(berth.url).host);
  // The exposed token signs in as docker login would send it.
  const token = await fetchToken(berth, 'default', String(exposed.username), String(exposed.accessToken), [
    'repository:x:pull',
  ]);
  assert.ok(token.token);

  const signIns = (await json(['audit', 'sign-ins', '-n', 'default', '--since', '1h'])) as unknown as {
    value: { identity: string; result: string }[];
  };
  assert.ok(
    signIns.value.some((s) => s.identity === 'admin' && s.result === 'success'),
    JSON.stringify(signIns),
  );
});
