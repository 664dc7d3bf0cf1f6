// Real clients against the network guard: skopeo and podman are refused with 403 while the registry
// denies 127.0.0.1, and work again right after `berth network-rule add` allows it. Rules are changed
// with the `berth` CLI as a subprocess, as an operator would.

import assert from 'node:assert/strict';
import { dirname, join, resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  describeFailure,
  registryHost,
  signInContainers,
  requireTool,
  run,
  pushLayoutArgs,
  runOk,
  testTempDir,
  writeContainersConfig,
  type RunResult,
} from '../helpers/e2e.js';
import { writeMultiArchLayout } from '../helpers/oci-layout.js';
import { v2fetch } from '../helpers/oci.js';
import { TEST_ADMIN_PASSWORD, startTestBerth, type TestBerth } from '../helpers/server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'src', 'cli', 'index.ts');

/** Runs `berth <args>` in a subprocess with its own profile directory. */
function berthCli(configDir: string) {
  return (args: string[]) =>
    runOk(process.execPath, ['--import', 'tsx', CLI, ...args], {
      env: { BERTH_CONFIG_DIR: configDir },
      cwd: ROOT,
      timeoutMs: 60_000,
    });
}

/** Starts Berth and logs a `berth` CLI profile in to it as the owner. */
async function berthWithCli(t: TestContext, dir: string) {
  const berth = await startTestBerth();
  t.after(() => berth.stop());
  const cli = berthCli(join(dir, 'berth-config'));
  await cli([
    'login',
    '--server',
    berth.managementUrl,
    '--username',
    'admin',
    '--password',
    TEST_ADMIN_PASSWORD,
  ]);
  return { berth, cli };
}

/** Denies everyone on the default registry (127.0.0.1 included) with `berth update`. */
async function deny(cli: ReturnType<typeof berthCli>, berth: TestBerth): Promise<void> {
  await cli(['update', '--name', 'default', '--default-action', 'Deny']);
  const res = await v2fetch(`${berth.url}/v2/`);
  assert.equal(res.status, 403, 'the CLI must have denied 127.0.0.1');
}

/** Asserts a client failed because of the guard: non-zero exit and a 403/denied message. */
function assertRefused(what: string, result: RunResult): void {
  assert.notEqual(result.code, 0, `${what} must fail while 127.0.0.1 is denied`);
  assert.equal(result.timedOut, false, `${what} timed out instead of being refused`);
  assert.match(result.stderr, /403|denied/i, `${what} must report the refusal:\n${result.stderr}`);
  if (process.env.BERTH_E2E_TRACE === '1') process.stderr.write(`${what}: ${result.stderr}\n`);
}

test('skopeo push and pull are refused with 403 while denied, and work after `berth network-rule add`', async (t) => {
  const skopeo = requireTool(t, 'skopeo');
  if (!skopeo) return;
  const dir = testTempDir(t);
  const containers = writeContainersConfig(dir);
  const { berth, cli } = await berthWithCli(t, dir);
  const layout = writeMultiArchLayout(join(dir, 'layout'));
  const repo = `docker://${registryHost(berth.url)}/e2e/guarded`;
  signInContainers(containers, registryHost(berth.url));
  const env = containers.env;
  const push = (tag: string) => pushLayoutArgs(containers, layout.dir, `${repo}:${tag}`);
  const inspect = ['inspect', '--raw', '--tls-verify=false', `${repo}:v1`];
  const listTags = ['list-tags', '--tls-verify=false', repo];

  // Content to pull later, pushed while the registry is still open.
  await runOk(skopeo, push('v1'), { env });
  await deny(cli, berth);

  assertRefused('skopeo copy (push)', await run(skopeo, push('v2'), { env }));
  assertRefused('skopeo inspect', await run(skopeo, inspect, { env }));
  assertRefused('skopeo list-tags', await run(skopeo, listTags, { env }));
  // The owner can see who was refused, and where they knocked.
  const audit = await cli(['audit', 'denials', '--name', 'default', '--ip', '127.0.0.1', '--output', 'json']);
  const refused = JSON.parse(audit.stdout) as { value: { path: string; reason: string }[] };
  assert.ok(
    refused.value.some((d) => d.path === '/v2/' && d.reason === 'ipNotAllowed'),
    audit.stdout,
  );

  const added = await cli(['network-rule', 'add', '--name', 'default', '--ip-address', '127.0.0.1']);
  assert.match(added.stdout, /127\.0\.0\.1/, describeFailure('berth network-rule add', [], added));

  // The refused push left nothing behind.
  const before = await runOk(skopeo, listTags, { env });
  assert.deepEqual((JSON.parse(before.stdout) as { Tags: string[] }).Tags, ['v1']);
  await runOk(skopeo, push('v2'), { env });
  const raw = await runOk(skopeo, inspect, { env });
  assert.equal((JSON.parse(raw.stdout) as { manifests: unknown[] }).manifests.length, 2);
  const tags = await runOk(skopeo, listTags, { env });
  assert.deepEqual((JSON.parse(tags.stdout) as { Tags: string[] }).Tags, ['v1', 'v2']);
});

test('podman login, pull and push are refused with 403 while denied, and work after `berth network-rule add`', async (t) => {
  const skopeo = requireTool(t, 'skopeo');
  const podman = skopeo && requireTool(t, 'podman');
  if (!skopeo || !podman) return;
  const dir = testTempDir(t);
  const containers = writeContainersConfig(dir);
  const { berth, cli } = await berthWithCli(t, dir);
  const host = registryHost(berth.url);
  signInContainers(containers, host);
  const layout = writeMultiArchLayout(join(dir, 'layout'));
  const env = containers.env;
  const pm = (args: string[]) =>
    run(podman, [...containers.storageFlags, ...args], { env, timeoutMs: 180_000 });
  const pmOk = async (args: string[]) => {
    const result = await pm(args);
    assert.equal(result.code, 0, describeFailure('podman', args, result));
    return result;
  };
  const tls = '--tls-verify=false';
  const signature = ['--signature-policy', containers.policy];
  const login = ['login', tls, '--username', 'admin', '--password', TEST_ADMIN_PASSWORD, host];
  const pull = ['pull', ...signature, tls, '--arch', 'amd64', `${host}/e2e/podman:v1`];
  const push = ['push', ...signature, tls, `${host}/e2e/podman:v1`, `docker://${host}/e2e/pushed:v1`];

  // An image in the registry, and the same image in podman's local storage (for the push).
  await runOk(skopeo, pushLayoutArgs(containers, layout.dir, `docker://${host}/e2e/podman:v1`), { env });
  await pmOk(pull);
  await deny(cli, berth);

  assertRefused('podman login', await pm(login));
  assertRefused('podman pull', await pm(pull));
  assertRefused('podman push', await pm(push));

  await cli(['network-rule', 'add', '--name', 'default', '--ip-address', '127.0.0.1']);

  const nothing = await v2fetch(`${berth.url}/v2/e2e/pushed/tags/list`);
  assert.equal(nothing.status, 404, 'the refused push must have left nothing behind');
  const loggedIn = await pmOk(login);
  assert.match(loggedIn.stdout + loggedIn.stderr, /Login Succeeded/i);
  await pmOk(['rmi', '--force', `${host}/e2e/podman:v1`]);
  await pmOk(pull);
  await pmOk(push);
  const tags = await v2fetch(`${berth.url}/v2/e2e/pushed/tags/list`);
  assert.equal(tags.status, 200);
  assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, ['v1']);
});
