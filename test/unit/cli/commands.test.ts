import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { cliHarness, type CliHarness } from './helpers/run-cli.js';
import { FAKE_API_KEY, FAKE_PASSWORD, FAKE_USER, startFakeApi, type FakeApi } from './helpers/fake-api.js';

let api: FakeApi;
let cli: CliHarness;

before(async () => {
  api = await startFakeApi({ dataEndpoint: 'http://127.0.0.1:5999' });
});
after(() => api.close());
beforeEach(() => {
  api.registries.clear();
  api.requests.length = 0;
  cli = cliHarness({ BERTH_SERVER: api.url, BERTH_API_KEY: FAKE_API_KEY });
});

// Parsed CLI output is probed field by field; a loose type keeps the assertions readable.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = (text: string) => JSON.parse(text) as Record<string, any>;
const last = () => api.requests.at(-1)!;

describe('login / logout', () => {
  test('login verifies with whoami, then stores the profile 0600 in BERTH_CONFIG_DIR', async () => {
    const anonymous = cliHarness();
    const result = await anonymous.run(
      'login',
      '--server',
      api.url,
      '--username',
      FAKE_USER,
      '--password',
      FAKE_PASSWORD,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(json(result.stdout).name, FAKE_USER);
    assert.equal(last().url, '/api/whoami');
    const file = join(anonymous.configDir, 'config.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).profile, {
      server: api.url,
      username: FAKE_USER,
      password: FAKE_PASSWORD,
    });

    // Later commands use the stored profile: no flags, no env.
    api.seed('myregistry');
    const show = await anonymous.run('show', '-n', 'myregistry', '--query', 'name', '-o', 'tsv');
    assert.equal(show.stdout, 'myregistry\n');
    assert.match(last().authorization!, /^Basic /);

    assert.equal((await anonymous.run('logout')).code, 0);
    assert.equal(existsSync(file), false);
    const afterLogout = await anonymous.run('list');
    assert.equal(afterLogout.code, 1);
    assert.match(afterLogout.stderr, /no server configured/);
  });

  test('wrong credentials: exit 1, the API message, and nothing stored', async () => {
    const anonymous = cliHarness();
    const result = await anonymous.run('login', '--server', api.url, '-u', FAKE_USER, '-p', 'wrong');
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^ERROR: Authentication failed: missing or invalid credentials\. \(run 'berth login'/m,
    );
    assert.equal(existsSync(join(anonymous.configDir, 'config.json')), false);
  });

  test('--api-key and --password-stdin', async () => {
    const byKey = cliHarness();
    assert.equal(
      (await byKey.run('login', '--server', api.url, '--api-key', FAKE_API_KEY, '-o', 'none')).code,
      0,
    );
    assert.equal(
      JSON.parse(readFileSync(join(byKey.configDir, 'config.json'), 'utf8')).profile.apiKey,
      FAKE_API_KEY,
    );
    const byStdin = cliHarness();
    byStdin.stdin = `${FAKE_PASSWORD}\n`;
    const result = await byStdin.run('login', '--server', api.url, '-u', FAKE_USER, '--password-stdin');
    assert.equal(result.code, 0, result.stderr);
  });

  test('on a terminal, missing username and password are asked for', async () => {
    const tty = cliHarness();
    tty.answers = [FAKE_USER, FAKE_PASSWORD];
    const result = await tty.run('login', '--server', api.url, '-o', 'none');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Username: Password: /);
  });

  test('environment credentials override the stored profile', async () => {
    const harness = cliHarness();
    await harness.run('login', '--server', api.url, '-u', FAKE_USER, '-p', FAKE_PASSWORD, '-o', 'none');
    harness.env.BERTH_API_KEY = FAKE_API_KEY;
    await harness.run('list');
    assert.equal(last().authorization, `Bearer ${FAKE_API_KEY}`);
    harness.env.BERTH_API_KEY = 'bad';
    const result = await harness.run('list');
    assert.equal(result.code, 1);
  });
});

describe('registries', () => {
  test('create sends PUT with the sku and only the given properties', async () => {
    const result = await cli.run(
      'create',
      '-n',
      'myregistry',
      '--sku',
      'premium',
      '--admin-enabled',
      'true',
      '--default-action',
      'Deny',
    );
    assert.equal(result.code, 0, result.stderr);
    const put = last();
    assert.equal(put.method, 'PUT');
    assert.deepEqual(put.body, {
      sku: { name: 'Premium' },
      properties: { adminUserEnabled: true, networkRuleSet: { defaultAction: 'Deny' } },
    });
    const shown = json(result.stdout);
    assert.equal(shown.loginServer, 'myregistry.localhost');
    assert.equal(shown.networkRuleSet.defaultAction, 'Deny');
    assert.equal(shown.properties, undefined, 'flattened like az');
  });

  test('create refuses a name that exists (PUT would replace it)', async () => {
    api.seed('myregistry');
    const result = await cli.run('create', '-n', 'myregistry', '--sku', 'Basic');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /already in use/);
    assert.ok(!api.requests.some((r) => r.method === 'PUT'));
  });

  test('create with an invalid name shows the API message', async () => {
    const result = await cli.run('create', '-n', 'a-b', '--sku', 'Basic');
    assert.equal(result.code, 1);
    assert.equal(result.stderr, "ERROR: 'a-b' is not a valid registry name.\n");
  });

  test('show of a missing registry exits 3', async () => {
    const result = await cli.run('show', '-n', 'nosuchregistry');
    assert.equal(result.code, 3);
    assert.equal(result.stderr, "ERROR: The registry 'nosuchregistry' was not found.\n");
    assert.equal(result.stdout, '');
  });

  test('list in every output format', async () => {
    api.seed('alphareg');
    api.seed('betareg', { sku: 'Basic', adminUserEnabled: true });
    const asJson = JSON.parse((await cli.run('list')).stdout) as { name: string }[];
    assert.deepEqual(
      asJson.map((r) => r.name),
      ['alphareg', 'betareg'],
    );
    assert.equal((await cli.run('list', '-o', 'jsonc')).stdout, (await cli.run('list', '-o', 'json')).stdout);
    assert.match((await cli.run('list', '-o', 'yaml')).stdout, /^- adminUserEnabled: false\n/);
    const table = (await cli.run('list', '-o', 'table')).stdout.split('\n');
    assert.match(table[0]!, /^NAME\s+SKU\s+LOGIN SERVER\s+CREATION DATE\s+ADMIN ENABLED$/);
    assert.match(table[3]!, /^betareg\s+Basic\s+betareg\.localhost\s+2026-01-02T03:04:05\.000Z\s+true$/);
    assert.equal(
      (await cli.run('list', '-o', 'tsv', '--query', '[].[name, sku.name]')).stdout,
      'alphareg\tPremium\nbetareg\tBasic\n',
    );
    assert.equal((await cli.run('list', '-o', 'none')).stdout, '');
  });

  test('update PATCHes exactly the given fields', async () => {
    api.seed('myregistry');
    const cases: [string[], unknown][] = [
      [['--sku', 'Standard'], { sku: { name: 'Standard' } }],
      [['--sku', 'Premium'], { sku: { name: 'Premium' } }],
      [['--default-action', 'Deny'], { properties: { networkRuleSet: { defaultAction: 'Deny' } } }],
      [['--admin-enabled'], { properties: { adminUserEnabled: true } }],
      [['--anonymous-pull-enabled', 'false'], { properties: { anonymousPullEnabled: false } }],
      [['--allow-trusted-services', 'false'], { properties: { networkRuleBypassOptions: 'None' } }],
      [['--allow-trusted-services', 'true'], { properties: { networkRuleBypassOptions: 'AzureServices' } }],
      [['--public-network-enabled', 'true'], { properties: { publicNetworkAccess: 'Enabled' } }],
    ];
    for (const [flags, body] of cases) {
      const result = await cli.run('update', '-n', 'myregistry', ...flags, '-o', 'none');
      assert.equal(result.code, 0, `${flags.join(' ')}: ${result.stderr}`);
      assert.equal(last().method, 'PATCH');
      assert.deepEqual(last().body, body, flags.join(' '));
    }
  });

  test('--public-network-enabled false also sets defaultAction Deny, with a warning', async () => {
    api.seed('myregistry');
    const result = await cli.run(
      'update',
      '-n',
      'myregistry',
      '--public-network-enabled',
      'false',
      '--query',
      'networkRuleSet.defaultAction',
      '-o',
      'tsv',
    );
    assert.equal(result.code, 0);
    assert.equal(result.stdout, 'Deny\n');
    assert.deepEqual(last().body, {
      properties: { publicNetworkAccess: 'Disabled', networkRuleSet: { defaultAction: 'Deny' } },
    });
    assert.match(
      result.stderr,
      /^WARNING: Disabling public network access also sets the default action to Deny/,
    );
    const quiet = await cli.run(
      'update',
      '-n',
      'myregistry',
      '--public-network-enabled',
      'false',
      '--only-show-errors',
      '-o',
      'none',
    );
    assert.equal(quiet.stderr, '');
  });

  test('a network feature on a non-Premium registry shows the API error', async () => {
    api.seed('basicreg', { sku: 'Basic' });
    const result = await cli.run('update', '-n', 'basicreg', '--default-action', 'Deny');
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^ERROR: Network rules are only supported for registries in the Premium SKU\.$/m,
    );
  });

  test('delete asks on a terminal; "n" cancels, "y" deletes; --yes skips the question', async () => {
    api.seed('myregistry');
    cli.answers = ['n'];
    const declined = await cli.run('delete', '-n', 'myregistry');
    assert.equal(declined.code, 1);
    assert.match(
      declined.stderr,
      /Are you sure you want to delete the registry 'myregistry'.*\(y\/n\): ERROR: operation cancelled/s,
    );
    assert.ok(api.registries.has('myregistry'));
    cli.answers = ['y'];
    assert.equal((await cli.run('delete', '-n', 'myregistry')).code, 0);
    assert.ok(!api.registries.has('myregistry'));
    cli.answers = undefined;
    api.seed('myregistry');
    const result = await cli.run('delete', '-n', 'myregistry', '--yes');
    assert.equal(result.code, 0);
    assert.equal(result.stdout, '');
    assert.equal(last().method, 'DELETE');
  });

  test('show-endpoints', async () => {
    api.seed('myregistry');
    const result = json((await cli.run('show-endpoints', '-n', 'myregistry')).stdout);
    assert.deepEqual(result, {
      dataEndpoints: ['http://127.0.0.1:5999'],
      loginServer: 'myregistry.localhost',
      privateEndpoints: [],
    });
    const table = (await cli.run('show-endpoints', '-n', 'myregistry', '-o', 'table')).stdout;
    assert.match(table, /myregistry\.localhost\s+http:\/\/127\.0\.0\.1:5999/);
  });
});

describe('check-health', () => {
  test('allowed (401 asks only for credentials): exit 0; the Host names the registry', async () => {
    api.seed('myregistry');
    const probes: { url: string; host?: string }[] = [];
    cli.probe = async (url, options) => {
      probes.push({ url, ...(options?.host ? { host: options.host } : {}) });
      return {
        url: `${url}/v2/`,
        status: 401,
        error: { code: 'UNAUTHORIZED', message: 'authentication required' },
      };
    };
    const result = await cli.run('check-health', '-n', 'myregistry');
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(probes, [{ url: 'http://127.0.0.1:5999', host: 'myregistry.localhost:5999' }]);
    assert.equal(json(result.stdout).allowed, true);
  });

  test('denied: prints the DENIED message, reason and the IP the registry saw; exit 1', async () => {
    api.seed('myregistry');
    cli.probe = async (url) => ({
      url,
      status: 403,
      error: {
        code: 'DENIED',
        message: "client with IP '192.0.2.9' is not allowed access.",
        detail: { reason: 'ipNotAllowed', clientIp: '192.0.2.9' },
      },
    });
    const result = await cli.run('check-health', '-n', 'myregistry');
    assert.equal(result.code, 1);
    const report = json(result.stdout);
    assert.equal(report.allowed, false);
    assert.equal(report.clientIp, '192.0.2.9');
    assert.equal(report.reason, 'ipNotAllowed');
    assert.equal(
      result.stderr,
      "ERROR: DENIED: client with IP '192.0.2.9' is not allowed access. (reason: ipNotAllowed)\n",
    );
  });
});

describe('repositories', () => {
  beforeEach(() => {
    api.seed('myregistry', {
      repositories: new Map([
        [
          'team/app',
          [
            { name: 'v1', digest: 'sha256:aaa' },
            { name: 'latest', digest: 'sha256:aaa' },
            { name: 'v2', digest: 'sha256:bbb' },
          ],
        ],
        ['web', [{ name: 'v1', digest: 'sha256:ccc' }]],
      ]),
    });
  });

  test('list, with --top, and in tsv/table', async () => {
    assert.deepEqual(json((await cli.run('repository', 'list', '-n', 'myregistry')).stdout), [
      'team/app',
      'web',
    ]);
    assert.equal(
      (await cli.run('repository', 'list', '-n', 'myregistry', '--top', '1', '-o', 'tsv')).stdout,
      'team/app\n',
    );
    assert.equal(
      (await cli.run('repository', 'list', '-n', 'myregistry', '-o', 'table')).stdout,
      'Result\n--------\nteam/app\nweb\n',
    );
  });

  test('list follows pages until a short one', async () => {
    const many = new Map(Array.from({ length: 230 }, (_, i) => [`repo${String(i).padStart(3, '0')}`, []]));
    api.seed('bigregistry', { repositories: many });
    const names = json(
      (await cli.run('repository', 'list', '-n', 'bigregistry')).stdout,
    ) as unknown as string[];
    assert.equal(names.length, 230);
    assert.equal(
      api.requests.filter((r) => r.url.startsWith('/api/registries/bigregistry/repositories')).length,
      3,
    );
    assert.ok(api.requests.some((r) => r.url.includes('last=repo099')));
  });

  test('show and show-tags (names, --detail)', async () => {
    assert.deepEqual(
      json((await cli.run('repository', 'show', '-n', 'myregistry', '--repository', 'team/app')).stdout),
      {
        manifestCount: 2,
        name: 'team/app',
        registry: 'myregistry',
        tagCount: 3,
      },
    );
    assert.deepEqual(
      json((await cli.run('repository', 'show-tags', '-n', 'myregistry', '--repository', 'team/app')).stdout),
      ['v1', 'latest', 'v2'],
    );
    const detail = (
      await cli.run(
        'repository',
        'show-tags',
        '-n',
        'myregistry',
        '--repository',
        'team/app',
        '--detail',
        '-o',
        'table',
      )
    ).stdout;
    assert.match(detail, /^NAME\s+DIGEST\n/);
    assert.match(detail, /latest\s+sha256:aaa/);
    const missing = await cli.run('repository', 'show-tags', '-n', 'myregistry', '--repository', 'nope');
    assert.equal(missing.code, 3);
  });

  test('untag removes one tag', async () => {
    const result = await cli.run('repository', 'untag', '-n', 'myregistry', '--image', 'team/app:latest');
    assert.equal(result.code, 0, result.stderr);
    assert.equal(last().url, '/api/registries/myregistry/repositories/team%2Fapp/tags/latest');
    assert.deepEqual(
      api.registries
        .get('myregistry')!
        .repositories.get('team/app')!
        .map((t) => t.name),
      ['v1', 'v2'],
    );
  });

  test('delete --image removes every tag on that manifest', async () => {
    const result = await cli.run(
      'repository',
      'delete',
      '-n',
      'myregistry',
      '--image',
      'team/app:v1',
      '--yes',
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      api.registries
        .get('myregistry')!
        .repositories.get('team/app')!
        .map((t) => t.name),
      ['v2'],
    );
    const missing = await cli.run(
      'repository',
      'delete',
      '-n',
      'myregistry',
      '--image',
      'team/app:v9',
      '--yes',
    );
    assert.equal(missing.code, 3);
  });

  test('delete --repository asks, then removes the repository', async () => {
    const refused = await cli.run('repository', 'delete', '-n', 'myregistry', '--repository', 'web');
    assert.equal(refused.code, 2);
    assert.ok(api.registries.get('myregistry')!.repositories.has('web'));
    assert.equal(
      (await cli.run('repository', 'delete', '-n', 'myregistry', '--repository', 'web', '-y')).code,
      0,
    );
    assert.ok(!api.registries.get('myregistry')!.repositories.has('web'));
  });
});

describe('credentials', () => {
  test('show and renew, json and table', async () => {
    api.seed('myregistry', { adminUserEnabled: true });
    assert.deepEqual(json((await cli.run('credential', 'show', '-n', 'myregistry')).stdout), {
      passwords: [
        { name: 'password', value: 'p1-initial' },
        { name: 'password2', value: 'p2-initial' },
      ],
      username: 'myregistry',
    });
    const renewed = await cli.run(
      'credential',
      'renew',
      '-n',
      'myregistry',
      '--password-name',
      'password2',
      '-o',
      'table',
    );
    assert.deepEqual(last().body, { name: 'password2' });
    assert.match(
      renewed.stdout,
      /^USERNAME\s+PASSWORD\s+PASSWORD2\n-+\s+-+\s+-+\nmyregistry\s+p1-initial\s+regenerated-\d+\n$/,
    );
  });

  test('admin user disabled is an API error, exit 1', async () => {
    api.seed('myregistry');
    const result = await cli.run('credential', 'show', '-n', 'myregistry');
    assert.equal(result.code, 1);
    assert.equal(result.stderr, 'ERROR: The admin user is disabled.\n');
  });
});

describe('network rules', () => {
  test('add sends only the new rule in one atomic POST and prints the registry', async () => {
    api.seed('myregistry', { ipRules: [{ action: 'Allow', value: '198.51.100.0/24' }] });
    const result = await cli.run('network-rule', 'add', '-n', 'myregistry', '--ip-address', '203.0.113.0/24');
    assert.equal(result.code, 0, result.stderr);
    // One atomic request naming only the new rule: no read-modify-write of the list.
    assert.equal(last().method, 'POST');
    assert.match(last().url, /\/api\/registries\/myregistry\/networkRuleSet\/ipRules$/);
    assert.deepEqual(last().body, { ipRules: [{ action: 'Allow', value: '203.0.113.0/24' }] });
    assert.ok(!api.requests.some((r) => r.method === 'PATCH' || r.method === 'GET'));
    assert.deepEqual(json(result.stdout).networkRuleSet.ipRules, [
      { action: 'Allow', ipAddressOrRange: '198.51.100.0/24' },
      { action: 'Allow', ipAddressOrRange: '203.0.113.0/24' },
    ]);
  });

  test('adding a rule that exists warns and changes nothing', async () => {
    api.seed('myregistry', { ipRules: [{ action: 'Allow', value: '203.0.113.0/24' }] });
    const result = await cli.run(
      'network-rule',
      'add',
      '-n',
      'myregistry',
      '--ip-address',
      '203.0.113.0/24',
      '-o',
      'none',
    );
    assert.equal(result.code, 0);
    // The server's own words, carried by its Warning header.
    assert.match(result.stderr, /WARNING: IP rule '203\.0\.113\.0\/24' is already present\./);
    assert.deepEqual(api.registries.get('myregistry')!.ipRules, [
      { action: 'Allow', value: '203.0.113.0/24' },
    ]);
  });

  test('an invalid rule is the API error, exit 1', async () => {
    api.seed('myregistry');
    const result = await cli.run('network-rule', 'add', '-n', 'myregistry', '--ip-address', 'not-an-ip');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /InvalidNetworkRule|not a valid IP address/);
  });

  test('list prints { ipRules: [{ action, ipAddressOrRange }] } like az, and a table', async () => {
    api.seed('myregistry', { ipRules: [{ action: 'Allow', value: '203.0.113.0/24' }] });
    assert.deepEqual(json((await cli.run('network-rule', 'list', '-n', 'myregistry')).stdout), {
      ipRules: [{ action: 'Allow', ipAddressOrRange: '203.0.113.0/24' }],
    });
    assert.equal(
      (await cli.run('network-rule', 'list', '-n', 'myregistry', '-o', 'table')).stdout,
      'ACTION  IP ADDRESS OR RANGE\n------  -------------------\nAllow   203.0.113.0/24\n',
    );
    assert.equal(
      (await cli.run('network-rule', 'list', '-n', 'myregistry', '-o', 'tsv', '--query', 'ipRules')).stdout,
      'Allow\t203.0.113.0/24\n',
    );
  });

  test('remove drops the rule; an absent rule exits 3', async () => {
    api.seed('myregistry', {
      ipRules: [
        { action: 'Allow', value: '203.0.113.0/24' },
        { action: 'Allow', value: '10.0.0.1' },
      ],
    });
    const result = await cli.run(
      'network-rule',
      'remove',
      '-n',
      'myregistry',
      '--ip-address',
      '203.0.113.0/24',
      '--query',
      'networkRuleSet.ipRules[].ipAddressOrRange',
      '-o',
      'tsv',
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '10.0.0.1\n');
    const absent = await cli.run(
      'network-rule',
      'remove',
      '-n',
      'myregistry',
      '--ip-address',
      '203.0.113.0/24',
    );
    assert.equal(absent.code, 3);
    assert.match(absent.stderr, /has no IP rule for '203\.0\.113\.0\/24'/);
  });

  test('check POSTs checkNetworkAccess and prints the decision', async () => {
    api.seed('myregistry', {
      defaultAction: 'Deny',
      ipRules: [{ action: 'Allow', value: '203.0.113.0/24' }],
    });
    const allowed = await cli.run('network-rule', 'check', '-n', 'myregistry', '--ip', '203.0.113.7');
    assert.deepEqual(last().body, { ip: '203.0.113.7' });
    assert.deepEqual(json(allowed.stdout), {
      allowed: true,
      ip: '203.0.113.7',
      matchedRule: '203.0.113.0/24',
      via: 'ipRule',
    });
    const denied = await cli.run(
      'network-rule',
      'check',
      '-n',
      'myregistry',
      '--ip',
      '192.0.2.1',
      '--query',
      'allowed',
      '-o',
      'tsv',
    );
    assert.equal(denied.code, 0, 'a denial is an answer, not a failure');
    assert.equal(denied.stdout, 'false\n');
  });
});

describe('audit denials', () => {
  test('passes --since/--ip/--limit and tabulates the denials', async () => {
    api.seed('myregistry');
    const result = await cli.run(
      'audit',
      'denials',
      '-n',
      'myregistry',
      '--since',
      '2026-01-01T00:00:00Z',
      '--ip',
      '198.51.100.7',
      '--limit',
      '5',
      '-o',
      'table',
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      last().url,
      '/api/registries/myregistry/networkDenials?since=2026-01-01T00%3A00%3A00.000Z&ip=198.51.100.7&limit=5',
    );
    assert.match(result.stdout, /^TIME\s+COUNT\s+CLIENT IP\s+METHOD\s+PATH\s+REASON\s+ENTRY\n/);
    assert.match(result.stdout, /198\.51\.100\.7\s+GET\s+\/v2\/\s+ipNotAllowed\s+public/);
    assert.doesNotMatch(result.stdout, /198\.51\.100\.8/);
    const counts = await cli.run(
      'audit',
      'denials',
      '-n',
      'myregistry',
      '--query',
      'countsByIp[].[clientIp, count]',
      '-o',
      'tsv',
    );
    assert.equal(counts.stdout, '198.51.100.7\t1\n198.51.100.8\t1\n');
  });
});

describe('private endpoint connections', () => {
  test('create, list, show, approve, reject, delete', async () => {
    api.seed('myregistry');
    const created = await cli.run(
      'private-endpoint-connection',
      'create',
      '--registry-name',
      'myregistry',
      '-n',
      'agents',
      '--address',
      '127.0.0.1:5101',
    );
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual(last().body, { properties: { privateEndpoint: { address: '127.0.0.1:5101' } } });
    assert.equal(json(created.stdout).privateLinkServiceConnectionState.status, 'Pending');

    const approved = await cli.run(
      'private-endpoint-connection',
      'approve',
      '-r',
      'myregistry',
      '-n',
      'agents',
      '--description',
      'build agents',
    );
    assert.equal(approved.code, 0, approved.stderr);
    assert.deepEqual(last().body, {
      properties: {
        privateEndpoint: { address: '127.0.0.1:5101' },
        privateLinkServiceConnectionState: { status: 'Approved', description: 'build agents' },
      },
    });
    assert.equal(
      (await cli.run('private-endpoint-connection', 'list', '-r', 'myregistry', '-o', 'table')).stdout,
      'NAME    ADDRESS         STATUS    DESCRIPTION\n------  --------------  --------  ------------\nagents  127.0.0.1:5101  Approved  build agents\n',
    );
    const shown = await cli.run(
      'private-endpoint-connection',
      'show',
      '-r',
      'myregistry',
      '-n',
      'agents',
      '--query',
      'privateLinkServiceConnectionState.status',
      '-o',
      'tsv',
    );
    assert.equal(shown.stdout, 'Approved\n');

    await cli.run('private-endpoint-connection', 'reject', '-r', 'myregistry', '-n', 'agents', '-o', 'none');
    assert.deepEqual(json(JSON.stringify(last().body)).properties.privateLinkServiceConnectionState, {
      status: 'Rejected',
      description: 'build agents',
    });

    assert.equal(
      (await cli.run('private-endpoint-connection', 'delete', '-r', 'myregistry', '-n', 'agents')).code,
      2,
    );
    assert.equal(
      (await cli.run('private-endpoint-connection', 'delete', '-r', 'myregistry', '-n', 'agents', '--yes'))
        .code,
      0,
    );
    const gone = await cli.run('private-endpoint-connection', 'show', '-r', 'myregistry', '-n', 'agents');
    assert.equal(gone.code, 3);
    assert.equal(gone.stderr, "ERROR: Private endpoint connection 'agents' was not found.\n");
  });
});

describe('failures', () => {
  test('connection refused: a clear message and exit 1', async () => {
    cli.env.BERTH_SERVER = 'http://127.0.0.1:9';
    const result = await cli.run('list');
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^ERROR: cannot connect to http:\/\/127\.0\.0\.1:9: .*; check --server or BERTH_SERVER\n$/,
    );
  });

  test('--server overrides BERTH_SERVER', async () => {
    cli.env.BERTH_SERVER = 'http://127.0.0.1:9';
    api.seed('myregistry');
    const result = await cli.run('show', '-n', 'myregistry', '--server', api.url, '-o', 'none');
    assert.equal(result.code, 0, result.stderr);
  });

  test('no credentials: 401 with a hint to log in', async () => {
    delete cli.env.BERTH_API_KEY;
    const result = await cli.run('list');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /run 'berth login'/);
  });
});
