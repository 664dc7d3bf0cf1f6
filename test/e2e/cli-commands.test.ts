// The `berth` executable as a subprocess against a real Berth: every command, every output format,
// exit codes, and the stored profile. Tests run in order and build on each other's state.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { pushImage, v2fetch } from '../helpers/oci.js';
import {
  berthCommand,
  isolatedEnv,
  runBerth,
  startE2EServer,
  type E2EServer,
  type ProcessResult,
} from '../unit/cli/helpers/e2e.js';

let server: E2EServer;
let configDir: string;
let env: Record<string, string>;
const REG = 'clie2ereg';

/** `berth ...args` with the stored profile; asserts the exit code. */
async function berth(
  args: string[],
  expectCode = 0,
  extraEnv: Record<string, string> = {},
): Promise<ProcessResult> {
  const result = await runBerth(args, { ...env, ...extraEnv });
  assert.equal(
    result.code,
    expectCode,
    `berth ${args.join(' ')}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
  );
  return result;
}

const parse = (result: ProcessResult) => JSON.parse(result.stdout) as Record<string, unknown>;
/** Skips a test that needs the real data plane when only the fake management API is running. */
function fakeOnly(t: { skip(message: string): void }): boolean {
  if (server.real) return false;
  t.skip('needs the real Berth server (its data plane)');
  return true;
}

before(async () => {
  server = await startE2EServer();
  ({ configDir, env } = isolatedEnv());
});
after(async () => {
  await server.stop();
});

describe(`berth (${berthCommand().kind}) against a Berth server`, () => {
  test('without a profile, a command says how to log in (exit 1)', async () => {
    const result = await berth(['list'], 1);
    assert.match(result.stderr, /^ERROR: no server configured: run 'berth login --server URL \.\.\.'/);
  });

  test('login with wrong credentials fails with the API message and stores nothing', async () => {
    const result = await berth(
      ['login', '--server', server.managementUrl, '-u', server.username, '-p', 'wrong'],
      1,
    );
    assert.match(result.stderr, /^ERROR: .*\(run 'berth login', or set BERTH_API_KEY\)/);
    assert.equal(existsSync(join(configDir, 'config.json')), false);
  });

  test('login stores a 0600 profile in a 0700 BERTH_CONFIG_DIR and prints whoami', async () => {
    const result = await runBerth(
      ['login', '--server', server.managementUrl, '--username', server.username, '--password-stdin'],
      env,
      `${server.password}\n`,
    );
    assert.equal(result.code, 0, result.stderr);
    const whoami = parse(result);
    assert.equal(whoami.name, server.username);
    assert.equal(whoami.server, server.managementUrl);
    assert.match(result.stderr, /^Logged in to .* as admin; profile saved to /);
    assert.equal(statSync(configDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(configDir, 'config.json')).mode & 0o777, 0o600);
    const stored = JSON.parse(readFileSync(join(configDir, 'config.json'), 'utf8')) as {
      profile: { server: string };
    };
    assert.equal(stored.profile.server, server.managementUrl);
  });

  test('create (table), and create again is refused', async () => {
    const result = await berth(['create', '-n', REG, '--sku', 'Premium', '-o', 'table']);
    const lines = result.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+SKU\s+LOGIN SERVER\s+CREATION DATE\s+ADMIN ENABLED$/);
    assert.match(
      lines[2]!,
      new RegExp(`^${REG}\\s+Premium\\s+${REG}\\.localhost\\s+\\d{4}-\\d\\d-\\d\\dT\\S+\\s+false$`),
    );
    const again = await berth(['create', '-n', REG, '--sku', 'Premium'], 1);
    assert.match(again.stderr, /already in use/);
  });

  test('create rejects a bad name (API error, exit 1) and a bad SKU (usage, exit 2)', async () => {
    const badName = await berth(['create', '-n', 'no', '--sku', 'Basic'], 1);
    assert.match(badName.stderr, /^ERROR: /);
    await berth(['create', '-n', 'fineregistry', '--sku', 'Gold'], 2);
  });

  test('show in every output format', async () => {
    const asJson = parse(await berth(['show', '-n', REG]));
    assert.equal(asJson.name, REG);
    assert.equal(asJson.loginServer, `${REG}.localhost`);
    assert.deepEqual(asJson.networkRuleSet, { defaultAction: 'Allow', ipRules: [] });
    assert.deepEqual(Object.keys(asJson), [...Object.keys(asJson)].sort(), 'keys sorted like az');

    const jsonc = await berth(['show', '-n', REG, '-o', 'jsonc']);
    assert.deepEqual(JSON.parse(jsonc.stdout), asJson, 'NO_COLOR jsonc is plain JSON');
    const coloured = await runBerth(['show', '-n', REG, '-o', 'jsonc'], { ...env, NO_COLOR: '' });
    assert.ok(coloured.stdout.includes('\x1b[94m"name"\x1b[0m'));

    assert.deepEqual(YAML.parse((await berth(['show', '-n', REG, '-o', 'yaml'])).stdout), asJson);
    assert.match(
      (await berth(['show', '-n', REG, '-o', 'table'])).stdout,
      new RegExp(`\\n${REG}\\s+Premium`),
    );
    const tsv = (await berth(['show', '-n', REG, '-o', 'tsv'])).stdout;
    assert.equal(tsv.split('\n').length, 2, 'one line');
    assert.ok(tsv.split('\t').includes(`${REG}.localhost`));
    assert.equal((await berth(['show', '-n', REG, '-o', 'none'])).stdout, '');
    assert.equal((await berth(['show', '-n', REG, '--query', 'sku.name', '-o', 'tsv'])).stdout, 'Premium\n');
    assert.equal(
      (await berth(['show', '-n', REG, '--query', '{n:name,p:publicNetworkAccess}', '-o', 'tsv'])).stdout,
      `${REG}\tEnabled\n`,
    );
  });

  test('show of a missing registry exits 3 with the API message', async () => {
    const result = await berth(['show', '-n', 'missingregistry'], 3);
    assert.match(result.stderr, /^ERROR: .*missingregistry.*not found/i);
  });

  test('list: json array and az-style table', async () => {
    const names = (JSON.parse((await berth(['list'])).stdout) as { name: string }[]).map((r) => r.name);
    assert.ok(names.includes(REG) && names.includes('default'), names.join());
    assert.match((await berth(['list', '-o', 'table'])).stdout, /^NAME\s+SKU\s+LOGIN SERVER/);
    assert.equal(
      (await berth(['list', '--query', `[?name=='${REG}'].sku.name`, '-o', 'tsv'])).stdout,
      'Premium\n',
    );
  });

  test('update: every settable property, only what was given', async () => {
    const q =
      '{a:adminUserEnabled,p:anonymousPullEnabled,b:networkRuleBypassOptions,d:networkRuleSet.defaultAction,n:publicNetworkAccess}';
    assert.equal(
      (await berth(['update', '-n', REG, '--admin-enabled', 'true', '--query', q, '-o', 'tsv'])).stdout,
      'true\tfalse\tAzureServices\tAllow\tEnabled\n',
    );
    assert.equal(
      (await berth(['update', '-n', REG, '--anonymous-pull-enabled', '--query', q, '-o', 'tsv'])).stdout,
      'true\ttrue\tAzureServices\tAllow\tEnabled\n',
    );
    assert.equal(
      (await berth(['update', '-n', REG, '--allow-trusted-services', 'false', '--query', q, '-o', 'tsv']))
        .stdout,
      'true\ttrue\tNone\tAllow\tEnabled\n',
    );
    assert.equal(
      (await berth(['update', '-n', REG, '--default-action', 'Deny', '--query', q, '-o', 'tsv'])).stdout,
      'true\ttrue\tNone\tDeny\tEnabled\n',
    );
    assert.equal(
      (
        await berth([
          'update',
          '-n',
          REG,
          '--default-action',
          'allow',
          '--anonymous-pull-enabled',
          'false',
          '--allow-trusted-services',
          'true',
          '--query',
          q,
          '-o',
          'tsv',
        ])
      ).stdout,
      'true\tfalse\tAzureServices\tAllow\tEnabled\n',
    );
  });

  test('update --public-network-enabled false also sets Deny and warns on stderr', async () => {
    const result = await berth([
      'update',
      '-n',
      REG,
      '--public-network-enabled',
      'false',
      '--query',
      '{p:publicNetworkAccess, d:networkRuleSet.defaultAction}',
      '-o',
      'tsv',
    ]);
    assert.equal(result.stdout, 'Disabled\tDeny\n');
    assert.match(
      result.stderr,
      /^WARNING: Disabling public network access also sets the default action to Deny/,
    );
    await berth([
      'update',
      '-n',
      REG,
      '--public-network-enabled',
      'true',
      '--default-action',
      'Allow',
      '-o',
      'none',
    ]);
  });

  test('update --sku Basic while network rules are in use is refused by the API (exit 1)', async () => {
    await berth(['update', '-n', REG, '--default-action', 'Deny', '-o', 'none']);
    const result = await berth(['update', '-n', REG, '--sku', 'Basic'], 1);
    assert.match(result.stderr, /^ERROR: /);
    await berth(['update', '-n', REG, '--default-action', 'Allow', '-o', 'none']);
  });

  test('show-endpoints: login server and data endpoints', async () => {
    const endpoints = parse(await berth(['show-endpoints', '-n', REG]));
    assert.equal(endpoints.loginServer, `${REG}.localhost`);
    assert.ok(Array.isArray(endpoints.dataEndpoints) && endpoints.dataEndpoints.length > 0);
    if (server.dataUrl) assert.deepEqual(endpoints.dataEndpoints, [server.dataUrl]);
    assert.match(
      (await berth(['show-endpoints', '-n', REG, '-o', 'table'])).stdout,
      /^LOGIN SERVER\s+DATA ENDPOINTS/,
    );
  });

  test(
    'show-usage: storage, IP rules and private endpoints against the SKU limits',
    {
      skip: process.env.BERTH_E2E_FAKE === '1' ? 'the fake API has no usages endpoint' : false,
    },
    async () => {
      const usages = parse(await berth(['show-usage', '-n', REG])) as {
        value: { name: string; limit: number; currentValue: number }[];
      };
      assert.deepEqual(
        usages.value.map((u) => u.name),
        ['Size', 'IPRules', 'PrivateEndpointConnections'],
      );
      assert.ok(usages.value.every((u) => Number.isInteger(u.limit) && u.currentValue >= 0));
      assert.match(
        (await berth(['show-usage', '-n', REG, '-o', 'table'])).stdout,
        /^NAME\s+LIMIT\s+CURRENT VALUE\s+UNIT/,
      );
    },
  );

  test('network-rule add / list / check / remove', async () => {
    const added = parse(await berth(['network-rule', 'add', '-n', REG, '--ip-address', '203.0.113.0/24']));
    assert.deepEqual(added.networkRuleSet, {
      defaultAction: 'Allow',
      ipRules: [{ action: 'Allow', ipAddressOrRange: '203.0.113.0/24' }],
    });
    await berth(['network-rule', 'add', '-n', REG, '--ip-address', '198.51.100.7', '-o', 'none']);
    assert.deepEqual(parse(await berth(['network-rule', 'list', '-n', REG])), {
      ipRules: [
        { action: 'Allow', ipAddressOrRange: '203.0.113.0/24' },
        { action: 'Allow', ipAddressOrRange: '198.51.100.7' },
      ],
    });
    assert.equal(
      (await berth(['network-rule', 'list', '-n', REG, '-o', 'table'])).stdout,
      'ACTION  IP ADDRESS OR RANGE\n------  -------------------\nAllow   203.0.113.0/24\nAllow   198.51.100.7\n',
    );
    assert.equal(
      (await berth(['network-rule', 'list', '-n', REG, '--query', 'ipRules[].ipAddressOrRange', '-o', 'tsv']))
        .stdout,
      '203.0.113.0/24\n198.51.100.7\n',
    );

    await berth(['update', '-n', REG, '--default-action', 'Deny', '-o', 'none']);
    const allowed = parse(await berth(['network-rule', 'check', '-n', REG, '--ip', '203.0.113.9']));
    assert.equal(allowed.allowed, true);
    assert.equal(allowed.matchedRule, '203.0.113.0/24');
    assert.equal(
      (
        await berth([
          'network-rule',
          'check',
          '-n',
          REG,
          '--ip',
          '192.0.2.1',
          '--query',
          'allowed',
          '-o',
          'tsv',
        ])
      ).stdout,
      'false\n',
    );
    assert.match(
      (await berth(['network-rule', 'check', '-n', REG, '--ip', '203.0.113.9', '-o', 'table'])).stdout,
      /^IP\s+ALLOWED\s+VIA\s+MATCHED RULE\n/,
    );

    const removed = parse(await berth(['network-rule', 'remove', '-n', REG, '--ip-address', '198.51.100.7']));
    assert.deepEqual((removed.networkRuleSet as { ipRules: unknown[] }).ipRules, [
      { action: 'Allow', ipAddressOrRange: '203.0.113.0/24' },
    ]);
    const absent = await berth(['network-rule', 'remove', '-n', REG, '--ip-address', '198.51.100.7'], 3);
    assert.match(absent.stderr, /has no IP rule/);
    const invalid = await berth(['network-rule', 'add', '-n', REG, '--ip-address', '300.1.2.3'], 1);
    assert.match(invalid.stderr, /^ERROR: .*300\.1\.2\.3/);
  });

  test('check-health: denied from 127.0.0.1 (exit 1, names the IP and reason), allowed after a rule', async (t) => {
    if (fakeOnly(t)) return;
    const denied = await berth(['check-health', '-n', REG], 1);
    const report = parse(denied);
    assert.equal(report.allowed, false);
    assert.equal(report.status, 403);
    assert.equal(report.code, 'DENIED');
    assert.equal(report.clientIp, '127.0.0.1');
    assert.equal(report.reason, 'ipNotAllowed');
    assert.match(
      denied.stderr,
      /^ERROR: DENIED: client with IP '127\.0\.0\.1' is not allowed access\..*\(reason: ipNotAllowed\)/,
    );

    await berth(['network-rule', 'add', '-n', REG, '--ip-address', '127.0.0.1', '-o', 'none']);
    const allowed = await berth(['check-health', '-n', REG, '-o', 'table']);
    assert.match(
      allowed.stdout,
      new RegExp(
        `^REGISTRY\\s+DATA ENDPOINT\\s+CLIENT IP\\s+ALLOWED\\s+MESSAGE\\n.*\\n${REG}\\s+\\S+\\s+127\\.0\\.0\\.1\\s+true\\s+the registry is reachable`,
      ),
    );
    assert.equal(parse(await berth(['check-health', '-n', REG])).clientIp, '127.0.0.1');
    await berth(['network-rule', 'remove', '-n', REG, '--ip-address', '127.0.0.1', '-o', 'none']);
  });

  test('audit denials lists the refused probe, filtered and tabulated', async (t) => {
    if (fakeOnly(t)) return;
    const denials = parse(await berth(['audit', 'denials', '-n', REG, '--since', '1h']));
    const value = denials.value as { clientIp: string; path: string; reason: string }[];
    assert.ok(
      value.some((d) => d.clientIp === '127.0.0.1' && d.path === '/v2/' && d.reason === 'ipNotAllowed'),
      JSON.stringify(value),
    );
    assert.ok((denials.countsByIp as { clientIp: string }[]).some((c) => c.clientIp === '127.0.0.1'));
    assert.match(
      (await berth(['audit', 'denials', '-n', REG, '--ip', '127.0.0.1', '--limit', '1', '-o', 'table']))
        .stdout,
      // One row per address, reason and minute, with how many denials it counts.
      /^TIME\s+COUNT\s+CLIENT IP\s+METHOD\s+PATH\s+REASON\s+ENTRY\n.*\n\S+\s+\d+\s+127\.0\.0\.1\s+GET\s+\/v2\/\s+ipNotAllowed\s+public\n$/,
    );
    assert.equal(
      (
        await berth([
          'audit',
          'denials',
          '-n',
          REG,
          '--ip',
          '192.0.2.200',
          '--query',
          'length(value)',
          '-o',
          'tsv',
        ])
      ).stdout,
      '0\n',
    );
    await berth(['update', '-n', REG, '--default-action', 'Allow', '-o', 'none']);
  });

  test('credential show / renew (admin user enabled earlier)', async () => {
    const credentials = parse(await berth(['credential', 'show', '-n', REG]));
    assert.equal(credentials.username, REG);
    const passwords = credentials.passwords as { name: string; value: string }[];
    assert.deepEqual(
      passwords.map((p) => p.name),
      ['password', 'password2'],
    );
    const renewed = parse(await berth(['credential', 'renew', '-n', REG, '--password-name', 'password2']));
    const after = renewed.passwords as { name: string; value: string }[];
    assert.equal(after[0]!.value, passwords[0]!.value);
    assert.notEqual(after[1]!.value, passwords[1]!.value);
    assert.match(
      (await berth(['credential', 'show', '-n', REG, '-o', 'table'])).stdout,
      new RegExp(`^USERNAME\\s+PASSWORD\\s+PASSWORD2\\n.*\\n${REG}\\s+\\S+\\s+\\S+\\n$`),
    );
    await berth(['update', '-n', REG, '--admin-enabled', 'false', '-o', 'none']);
    const disabled = await berth(['credential', 'show', '-n', REG], 1);
    assert.match(disabled.stderr, /^ERROR: /);
  });

  test('repository list / show / show-tags / untag / delete', async (t) => {
    if (fakeOnly(t)) return;
    // The data plane's default registry is what a bare address reaches, so content goes there.
    const v1 = await pushImage(server.dataUrl!, 'cli/app', 'v1');
    await pushImage(server.dataUrl!, 'cli/app', 'v2');
    const { digest } = await v2fetch(`${server.dataUrl}/v2/cli/app/manifests/v1`, { method: 'HEAD' }).then(
      (r) => ({ digest: r.headers.get('docker-content-digest') }),
    );
    assert.equal(digest, v1.digest);
    await v2fetch(`${server.dataUrl}/v2/cli/app/manifests/latest`, {
      method: 'PUT',
      headers: { 'Content-Type': v1.descriptor.mediaType },
      body: new Uint8Array(v1.bytes),
    });
    await pushImage(server.dataUrl!, 'cli/web', 'v1');

    const repos = JSON.parse((await berth(['repository', 'list', '-n', 'default'])).stdout) as string[];
    assert.ok(repos.includes('cli/app') && repos.includes('cli/web'), repos.join());
    assert.equal(
      (
        await berth([
          'repository',
          'list',
          '-n',
          'default',
          '--query',
          "[?starts_with(@, 'cli/')]",
          '-o',
          'tsv',
        ])
      ).stdout,
      'cli/app\ncli/web\n',
    );
    assert.match(
      (await berth(['repository', 'list', '-n', 'default', '-o', 'table'])).stdout,
      /^Result\n-+\n/,
    );
    assert.deepEqual(parse(await berth(['repository', 'show', '-n', 'default', '--repository', 'cli/app'])), {
      manifestCount: 2,
      name: 'cli/app',
      registry: 'default',
      tagCount: 3,
    });
    const tags = JSON.parse(
      (await berth(['repository', 'show-tags', '-n', 'default', '--repository', 'cli/app'])).stdout,
    ) as string[];
    assert.deepEqual([...tags].sort(), ['latest', 'v1', 'v2']);
    const detail = (
      await berth([
        'repository',
        'show-tags',
        '-n',
        'default',
        '--repository',
        'cli/app',
        '--detail',
        '-o',
        'table',
      ])
    ).stdout;
    assert.match(detail, new RegExp(`latest\\s+${v1.digest}`));

    await berth(['repository', 'untag', '-n', 'default', '--image', 'cli/app:v2']);
    assert.deepEqual(
      JSON.parse(
        (await berth(['repository', 'show-tags', '-n', 'default', '--repository', 'cli/app'])).stdout,
      ).sort(),
      ['latest', 'v1'],
    );

    // --image removes every tag on the manifest (v1 and latest share it).
    await berth(['repository', 'delete', '-n', 'default', '--image', 'cli/app:v1'], 2);
    await berth(['repository', 'delete', '-n', 'default', '--image', 'cli/app:v1', '--yes']);
    const left = await runBerth(['repository', 'show-tags', '-n', 'default', '--repository', 'cli/app'], env);
    assert.ok(
      left.code === 3 || JSON.parse(left.stdout).length === 0,
      `${left.code} ${left.stdout} ${left.stderr}`,
    );

    await berth(['repository', 'delete', '-n', 'default', '--repository', 'cli/web', '--yes']);
    await berth(['repository', 'show', '-n', 'default', '--repository', 'cli/web'], 3);
    await berth(['repository', 'untag', '-n', 'default', '--image', 'cli/web:v1'], 3);
  });

  test('private-endpoint-connection create / list / show / approve / reject / delete', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const created = parse(
      await berth([
        'private-endpoint-connection',
        'create',
        '--registry-name',
        REG,
        '-n',
        'agents',
        '--address',
        address,
      ]),
    );
    assert.equal(created.name, 'agents');
    assert.deepEqual(created.privateEndpoint, { address });
    assert.equal((created.privateLinkServiceConnectionState as { status: string }).status, 'Pending');

    const approved = parse(
      await berth([
        'private-endpoint-connection',
        'approve',
        '-r',
        REG,
        '-n',
        'agents',
        '--description',
        'build agents',
      ]),
    );
    assert.deepEqual(approved.privateLinkServiceConnectionState, {
      actionsRequired: 'None',
      description: 'build agents',
      status: 'Approved',
    });
    assert.match(
      (await berth(['private-endpoint-connection', 'list', '-r', REG, '-o', 'table'])).stdout,
      new RegExp(
        `^NAME\\s+ADDRESS\\s+STATUS\\s+DESCRIPTION\\n.*\\nagents\\s+${address.replace(/\./g, '\\.')}\\s+Approved\\s+build agents\\n$`,
      ),
    );
    const endpoints = parse(await berth(['show-endpoints', '-n', REG]));
    assert.deepEqual(endpoints.privateEndpoints, [{ name: 'agents', address, state: 'Approved' }]);
    assert.equal(
      (
        await berth([
          'show',
          '-n',
          REG,
          '--query',
          'privateEndpointConnections[0].privateLinkServiceConnectionState.status',
          '-o',
          'tsv',
        ])
      ).stdout,
      'Approved\n',
    );

    const rejected = await berth([
      'private-endpoint-connection',
      'reject',
      '-r',
      REG,
      '-n',
      'agents',
      '--query',
      'privateLinkServiceConnectionState.{s:status,d:description}',
      '-o',
      'tsv',
    ]);
    assert.equal(rejected.stdout, 'Rejected\tbuild agents\n');
    assert.equal(
      (
        await berth(['private-endpoint-connection', 'show', '-r', REG, '-n', 'agents', '-o', 'yaml'])
      ).stdout.includes('status: Rejected'),
      true,
    );

    await berth(['private-endpoint-connection', 'delete', '-r', REG, '-n', 'agents'], 2);
    await berth(['private-endpoint-connection', 'delete', '-r', REG, '-n', 'agents', '--yes']);
    await berth(['private-endpoint-connection', 'show', '-r', REG, '-n', 'agents'], 3);
    assert.equal((await berth(['private-endpoint-connection', 'list', '-r', REG])).stdout, '[]\n');
  });

  test('login --api-key; a Reader key can show but not update (403, exit 1)', async (t) => {
    if (fakeOnly(t)) return;
    const basic = `Basic ${Buffer.from(`${server.username}:${server.password}`).toString('base64')}`;
    const created = await fetch(`${server.managementUrl}/api/apiKeys`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'cli-reader', role: 'Reader', registry: REG }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const { key } = (await created.json()) as { key: string };

    const keyed = isolatedEnv();
    const login = await runBerth(['login', '--server', server.managementUrl, '--api-key', key], keyed.env);
    assert.equal(login.code, 0, login.stderr);
    assert.deepEqual(parse(login).roles, [{ registry: REG, role: 'Reader' }]);
    const stored = JSON.parse(readFileSync(join(keyed.configDir, 'config.json'), 'utf8')) as {
      profile: Record<string, string>;
    };
    assert.deepEqual(stored.profile, { server: server.managementUrl, apiKey: key });

    const shown = await runBerth(['show', '-n', REG, '--query', 'name', '-o', 'tsv'], keyed.env);
    assert.equal(shown.stdout, `${REG}\n`, shown.stderr);
    const refused = await runBerth(['update', '-n', REG, '--admin-enabled', 'true'], keyed.env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^ERROR: /);
    assert.equal(refused.stdout, '');
  });

  test('environment overrides: BERTH_SERVER with BERTH_USERNAME/PASSWORD needs no profile', async () => {
    const fresh = isolatedEnv();
    const ok = await runBerth(['show', '-n', REG, '--query', 'name', '-o', 'tsv'], {
      ...fresh.env,
      BERTH_SERVER: server.managementUrl,
      BERTH_USERNAME: server.username,
      BERTH_PASSWORD: server.password,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `${REG}\n`);
    const wrongKey = await runBerth(['list'], { ...env, BERTH_API_KEY: 'not-a-key' });
    assert.equal(wrongKey.code, 1, 'BERTH_API_KEY overrides the stored password');
  });

  test('connection refused: clear message, exit 1', async () => {
    const result = await berth(['list', '--server', `http://127.0.0.1:${await freePort()}`], 1);
    assert.match(
      result.stderr,
      /^ERROR: cannot connect to http:\/\/127\.0\.0\.1:\d+: connection refused \(is the server running\?\); check --server or BERTH_SERVER\n$/,
    );
  });

  test('delete: refuses without --yes off a terminal (exit 2), deletes with it; then show exits 3', async () => {
    const refused = await berth(['delete', '-n', REG], 2);
    assert.match(refused.stderr, /pass --yes/);
    await berth(['show', '-n', REG, '-o', 'none']);
    assert.equal((await berth(['delete', '-n', REG, '--yes'])).stdout, '');
    await berth(['show', '-n', REG], 3);
  });

  test('logout forgets the profile', async () => {
    await berth(['logout']);
    assert.equal(existsSync(join(configDir, 'config.json')), false);
    await berth(['list'], 1);
    const again = await berth(['logout']);
    assert.match(again.stderr, /WARNING: not logged in/);
  });
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
