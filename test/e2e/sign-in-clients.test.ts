// podman, skopeo and buildah sign in to Berth with the admin user and with a repository-scoped token,
// then pull and push; a pull-only token is refused a push with a clear error.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  describeFailure,
  pushLayoutArgs,
  registryHost,
  requireTool,
  run,
  runOk,
  testTempDir,
  writeContainersConfig,
} from '../helpers/e2e.js';
import { apiFor } from '../helpers/management.js';
import { writeMultiArchLayout } from '../helpers/oci-layout.js';
import { startTestBerth } from '../helpers/server.js';

test('podman, skopeo and buildah log in with the admin user and with scoped tokens; pull-only cannot push', async (t) => {
  const skopeo = requireTool(t, 'skopeo');
  const podman = skopeo && requireTool(t, 'podman');
  const buildah = podman && requireTool(t, 'buildah');
  if (!skopeo || !podman || !buildah) return;
  const dir = testTempDir(t);
  // No credentials are written for the tools: every one of them signs in itself.
  const containers = writeContainersConfig(dir);
  const berth = await startTestBerth();
  t.after(() => berth.stop());
  const host = registryHost(berth.url);
  const env = containers.env;
  const api = apiFor(berth);
  const tls = '--tls-verify=false';
  const ok = async (tool: string, args: string[]) => {
    const result = await run(tool, args, { env, timeoutMs: 180_000 });
    assert.equal(result.code, 0, describeFailure(tool, args, result));
    return result;
  };
  const pm = (args: string[]) => ok(podman, [...containers.storageFlags, ...args]);
  const bd = (args: string[]) => ok(buildah, [...containers.storageFlags, ...args]);

  // The admin user: enabled on the default registry, its password from listCredentials.
  assert.equal(
    (await api('PATCH', '/api/registries/default', { properties: { adminUserEnabled: true } })).status,
    200,
  );
  const admin = (await api('POST', '/api/registries/default/listCredentials')).body as {
    username: string;
    passwords: { value: string }[];
  };
  const layout = writeMultiArchLayout(join(dir, 'layout'));
  // Without credentials skopeo is refused.
  const anonymous = await run(
    skopeo,
    pushLayoutArgs(containers, layout.dir, `docker://${host}/e2e/signin:v1`),
    { env },
  );
  assert.notEqual(anonymous.code, 0);
  assert.match(anonymous.stderr, /unauthorized|authentication required/i, anonymous.stderr);
  // podman login with a wrong password fails; with the admin password it succeeds and the tools share it.
  const wrong = await run(podman, ['login', tls, '--username', admin.username, '--password', 'wrong', host], {
    env,
  });
  assert.notEqual(wrong.code, 0);
  const login = await pm([
    'login',
    tls,
    '--username',
    admin.username,
    '--password',
    admin.passwords[0]!.value,
    host,
  ]);
  assert.match(login.stdout + login.stderr, /Login Succeeded/i);
  await ok(skopeo, pushLayoutArgs(containers, layout.dir, `docker://${host}/e2e/signin:v1`));
  await pm([
    'pull',
    '--signature-policy',
    containers.policy,
    tls,
    '--arch',
    'amd64',
    `${host}/e2e/signin:v1`,
  ]);
  await pm(['logout', host]);

  // A push token on e2e/* (scope map), and a pull-only token (system scope map).
  await api('PUT', '/api/registries/default/scopeMaps/e2epush', {
    properties: { actions: ['repositories/e2e/*/content/read', 'repositories/e2e/*/content/write'] },
  });
  const mint = async (token: string, scopeMap: string) => {
    await api('PUT', `/api/registries/default/tokens/${token}`, { properties: { scopeMapId: scopeMap } });
    const res = await api('POST', '/api/registries/default/generateCredentials', {
      tokenId: token,
      name: 'password1',
    });
    return res.body.passwords[0].value as string;
  };
  const pusher = await mint('e2epusher', 'e2epush');
  const reader = await mint('e2ereader', '_repositories_pull');

  // buildah logs in with the push token, builds and pushes.
  await bd(['login', tls, '--username', 'e2epusher', '--password', pusher, host]);
  writeFileSync(join(dir, 'note.txt'), 'signed in\n');
  const container = (await bd(['from', '--signature-policy', containers.policy, 'scratch'])).stdout.trim();
  await bd(['copy', container, join(dir, 'note.txt'), '/note.txt']);
  await bd(['commit', '--format', 'oci', container, 'localhost/e2e-signed:latest']);
  await bd([
    'push',
    '--signature-policy',
    containers.policy,
    tls,
    'localhost/e2e-signed:latest',
    `docker://${host}/e2e/built:v1`,
  ]);
  // Outside e2e/* the same token may not push.
  const outside = await run(
    buildah,
    [
      ...containers.storageFlags,
      'push',
      '--signature-policy',
      containers.policy,
      tls,
      'localhost/e2e-signed:latest',
      `docker://${host}/other/built:v1`,
    ],
    { env, timeoutMs: 180_000 },
  );
  assert.notEqual(outside.code, 0);
  // A HEAD has no body, so the tool can only say 403 here.
  assert.match(outside.stderr, /denied|403/i, outside.stderr);
  await bd(['logout', host]);

  // skopeo with the pull-only token: reads, and is refused a push with a clear error.
  const creds = ['--creds', `e2ereader:${reader}`];
  const inspected = await ok(skopeo, ['inspect', '--raw', tls, ...creds, `docker://${host}/e2e/built:v1`]);
  assert.match(inspected.stdout, /schemaVersion/);
  const refused = await run(
    skopeo,
    [
      'copy',
      '--policy',
      containers.policy,
      '--all',
      '--dest-tls-verify=false',
      '--dest-creds',
      `e2ereader:${reader}`,
      `oci:${layout.dir}:v1`,
      `docker://${host}/e2e/readonly:v1`,
    ],
    { env },
  );
  assert.notEqual(refused.code, 0, 'a pull-only token must not push');
  assert.match(refused.stderr, /denied/i, refused.stderr);
  assert.match(refused.stderr, /e2ereader/, refused.stderr);
  // podman pulls with it too.
  await pm(['login', tls, '--username', 'e2ereader', '--password', reader, host]);
  await pm(['pull', '--signature-policy', containers.policy, tls, `${host}/e2e/built:v1`]);
  await runOk(podman, [...containers.storageFlags, 'logout', host], { env });
});
