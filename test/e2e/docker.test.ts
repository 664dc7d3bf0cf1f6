// The Docker engine against Berth's sign-in: docker login with a wrong password fails and with the
// right one succeeds, push and pull work, a login from a refused address is 403, a pull-only token
// cannot push, and `berth login --name` (the `az acr login` mirror) signs docker in.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { describeFailure, registryHost, requireTool, run, runOk, testTempDir } from '../helpers/e2e.js';
import { startDockerd } from '../helpers/dockerd.js';
import { apiFor } from '../helpers/management.js';
import { setNetwork } from '../helpers/net.js';
import { TEST_ADMIN_PASSWORD, startTestBerth } from '../helpers/server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'src', 'cli', 'index.ts');

test('docker login, push and pull with Berth sign-in; refused address, pull-only token, berth login --name', async (t) => {
  const dockerd = requireTool(t, 'dockerd');
  const docker = dockerd && requireTool(t, 'docker');
  const tar = docker && requireTool(t, 'tar');
  if (!dockerd || !docker || !tar) return;
  if (process.getuid?.() !== 0) {
    // dockerd needs root; CI runs as root. Outside it, say so instead of failing obscurely.
    if (process.env.BERTH_REQUIRE_E2E === '1') throw new Error('the docker e2e test must run as root');
    t.skip('dockerd needs root');
    return;
  }
  const dir = testTempDir(t);
  const berth = await startTestBerth();
  t.after(() => berth.stop());
  const host = registryHost(berth.url);
  const engine = await startDockerd(dockerd, docker, [host]);
  t.after(() => engine.stop());
  const env = engine.env;
  const dk = (args: string[], input?: string) =>
    run(docker, args, { env, timeoutMs: 180_000, ...(input !== undefined ? { input } : {}) });
  const dkOk = async (args: string[], input?: string) => {
    const result = await dk(args, input);
    assert.equal(result.code, 0, describeFailure('docker', args, result));
    return result;
  };
  const login = (user: string, password: string) =>
    dk(['login', host, '--username', user, '--password-stdin'], password);

  // An image to push: a one-file root filesystem, imported.
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs);
  writeFileSync(join(rootfs, 'hello.txt'), `hello from the docker e2e test ${Date.now()}\n`);
  await runOk(tar, ['-cf', join(dir, 'rootfs.tar'), '-C', rootfs, '.']);
  const image = `${host}/e2e/docker:v1`;
  await dkOk(['import', join(dir, 'rootfs.tar'), image]);

  // Without signing in, the push is refused.
  const anonymous = await dk(['push', image]);
  assert.notEqual(anonymous.code, 0);
  assert.match(anonymous.stderr, /unauthorized|authentication required/i, anonymous.stderr);

  const wrong = await login('admin', 'wrong-password');
  assert.notEqual(wrong.code, 0, 'a wrong password must not log in');
  assert.match(wrong.stderr, /unauthorized|invalid/i, wrong.stderr);
  const right = await login('admin', TEST_ADMIN_PASSWORD);
  assert.equal(right.code, 0, describeFailure('docker login', [], right));
  assert.match(right.stdout, /Login Succeeded/);

  await dkOk(['push', image]);
  await dkOk(['rmi', image]);
  await dkOk(['pull', image]);
  const listed = await dkOk(['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.match(listed.stdout, new RegExp(`${host}/e2e/docker:v1`));

  // A pull-only token: docker pulls with it and is refused a push with a clear error.
  const api = apiFor(berth);
  await api('PUT', '/api/registries/default/tokens/pullonly', {
    properties: { scopeMapId: '_repositories_pull' },
  });
  const password = (
    await api('POST', '/api/registries/default/generateCredentials', {
      tokenId: 'pullonly',
      name: 'password1',
    })
  ).body.passwords[0].value as string;
  await dk(['logout', host]);
  assert.equal((await login('pullonly', password)).code, 0);
  await dkOk(['pull', image]);
  await dkOk(['tag', image, `${host}/e2e/docker:v2`]);
  const refused = await dk(['push', `${host}/e2e/docker:v2`]);
  assert.notEqual(refused.code, 0, 'a pull-only token must not push');
  assert.match(refused.stderr, /denied/i, refused.stderr);
  assert.match(refused.stderr, /pullonly/, refused.stderr);

  // `berth login --name default` (az acr login) signs docker in with a short-lived token.
  await dk(['logout', host]);
  const configDir = join(dir, 'berth-config');
  const berthCli = (args: string[], extraEnv: Record<string, string> = {}) =>
    run(process.execPath, ['--import', 'tsx', CLI, ...args], {
      env: { BERTH_CONFIG_DIR: configDir, ...extraEnv },
      cwd: ROOT,
      timeoutMs: 60_000,
    });
  const profile = await berthCli([
    'login',
    '--server',
    berth.managementUrl,
    '-u',
    'admin',
    '-p',
    TEST_ADMIN_PASSWORD,
  ]);
  assert.equal(profile.code, 0, profile.stderr);
  const exposed = await berthCli(['login', '--name', 'default', '--expose-token', '--output', 'json']);
  assert.equal(exposed.code, 0, exposed.stderr);
  const token = JSON.parse(exposed.stdout) as { accessToken: string; loginServer: string; username: string };
  assert.equal(token.loginServer, host);
  assert.equal(token.username, '00000000-0000-0000-0000-000000000000');
  const signedIn = await berthCli(['login', '--name', 'default'], { ...env, DOCKER_COMMAND: docker });
  assert.equal(signedIn.code, 0, signedIn.stderr);
  await dkOk(['push', `${host}/e2e/docker:v2`]);

  // From a refused address docker login is told 403: the registry denies 127.0.0.1 (dockerd's source).
  await setNetwork(berth, {
    defaultAction: 'Deny',
    ipRules: ['127.0.0.2'],
    networkRuleBypassOptions: 'None',
  });
  await dk(['logout', host]);
  const denied = await login('admin', TEST_ADMIN_PASSWORD);
  assert.notEqual(denied.code, 0, 'docker login from a refused address must fail');
  assert.match(denied.stderr, /403|denied/i, denied.stderr);
  assert.doesNotMatch(denied.stderr, /unauthorized/i, 'the refusal is the network, not the password');
});
