import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { parseSince } from '../../../src/cli/commands/audit.js';
import { parseImageReference } from '../../../src/cli/commands/repository.js';
import { registryHost } from '../../../src/cli/commands/check-health.js';
import { choiceParser, parseBoolean } from '../../../src/cli/options.js';
import { UsageError } from '../../../src/cli/errors.js';
import { cliHarness } from './helpers/run-cli.js';

// None of these reach a server: BERTH_SERVER points at a port nothing listens on, so a test that
// wrongly got past parsing would fail with exit 1, not 2.
const cli = cliHarness({ BERTH_SERVER: 'http://127.0.0.1:9', BERTH_API_KEY: 'unused' });

describe('usage errors exit 2 with ERROR: on stderr', () => {
  const cases: [string, string[], RegExp][] = [
    ['unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['unknown option', ['show', '-n', 'myregistry', '--colour'], /unknown option '--colour'/],
    ['missing required --name', ['show'], /required option '-n, --name <registry>' not specified/],
    ['missing --sku on create', ['create', '-n', 'myregistry'], /--sku/],
    [
      'bad --sku choice',
      ['create', '-n', 'myregistry', '--sku', 'Gold'],
      /Allowed choices are Basic, Standard, Premium/,
    ],
    ['bad --default-action', ['update', '-n', 'myregistry', '--default-action', 'Maybe'], /Allow, Deny/],
    [
      'bad boolean',
      ['update', '-n', 'myregistry', '--admin-enabled', 'perhaps'],
      /expected 'true' or 'false'/,
    ],
    ['bad --output', ['list', '-o', 'xml'], /Allowed choices are json, jsonc, table, tsv, yaml, none/],
    ['invalid --query', ['list', '--query', '[?name=='], /invalid JMESPath query/],
    ['option without its value', ['show', '-n'], /argument missing/],
    ['update with nothing to change', ['update', '-n', 'myregistry'], /nothing to update/],
    [
      'repository delete with neither flag',
      ['repository', 'delete', '-n', 'myregistry', '--yes'],
      /exactly one of --repository and --image/,
    ],
    [
      'repository delete with both flags',
      ['repository', 'delete', '-n', 'r', '--repository', 'a', '--image', 'a:1', '--yes'],
      /exactly one/,
    ],
    ['untag without a tag', ['repository', 'untag', '-n', 'myregistry', '--image', 'app'], /repo:tag/],
    [
      'bad --password-name',
      ['credential', 'renew', '-n', 'myregistry', '--password-name', 'password3'],
      /password, password2/,
    ],
    ['pec without --registry-name', ['private-endpoint-connection', 'show', '-n', 'pe1'], /--registry-name/],
    ['bad --since', ['audit', 'denials', '-n', 'myregistry', '--since', 'yesterday'], /ISO 8601/],
    ['bad --top', ['repository', 'list', '-n', 'myregistry', '--top', '0'], /positive whole number/],
    ['group without a subcommand', ['network-rule'], /Usage: berth network-rule/],
    ['delete without --yes and no terminal', ['delete', '-n', 'myregistry'], /pass --yes/],
    [
      'login with both kinds of credentials',
      ['login', '--server', 'http://x', '--api-key', 'k', '-u', 'a', '-p', 'b'],
      /either --api-key/,
    ],
    ['login without server', ['login', '--api-key', 'k'], /login needs --server/],
  ];
  for (const [name, argv, message] of cases) {
    test(name, async () => {
      const saved = cli.env.BERTH_SERVER;
      if (argv[0] === 'login' && !argv.includes('--server')) delete cli.env.BERTH_SERVER;
      const result = await cli.run(...argv);
      cli.env.BERTH_SERVER = saved;
      assert.equal(result.code, 2, `exit code for ${argv.join(' ')}; stderr: ${result.stderr}`);
      assert.match(result.stderr, message);
      if (name !== 'group without a subcommand') assert.match(result.stderr, /^ERROR: /m);
      assert.equal(result.stdout, '');
    });
  }
});

describe('help and version', () => {
  test('--help on the program lists every command group and the exit codes, exit 0', async () => {
    const result = await cli.run('--help');
    assert.equal(result.code, 0);
    for (const command of [
      'login',
      'create',
      'update',
      'network-rule',
      'private-endpoint-connection',
      'audit',
      'check-health',
    ]) {
      assert.match(result.stdout, new RegExp(`\\n  ${command}\\b`));
    }
    assert.match(result.stdout, /Exit codes: 0 ok, 1 operation failed, 2 usage error, 3 resource not found/);
  });

  const leaves = [
    ['login'],
    ['logout'],
    ['create'],
    ['show'],
    ['list'],
    ['update'],
    ['delete'],
    ['show-endpoints'],
    ['check-health'],
    ['repository', 'list'],
    ['repository', 'show'],
    ['repository', 'show-tags'],
    ['repository', 'delete'],
    ['repository', 'untag'],
    ['credential', 'show'],
    ['credential', 'renew'],
    ['network-rule', 'add'],
    ['network-rule', 'list'],
    ['network-rule', 'remove'],
    ['network-rule', 'check'],
    ['private-endpoint-connection', 'list'],
    ['private-endpoint-connection', 'show'],
    ['private-endpoint-connection', 'create'],
    ['private-endpoint-connection', 'approve'],
    ['private-endpoint-connection', 'reject'],
    ['private-endpoint-connection', 'delete'],
    ['audit', 'denials'],
  ];
  for (const leaf of leaves) {
    test(`${leaf.join(' ')} --help shows the global options, exit 0`, async () => {
      const result = await cli.run(...leaf, '--help');
      assert.equal(result.code, 0);
      assert.match(result.stdout, new RegExp(`Usage: berth ${leaf.join(' ')}`));
      assert.match(result.stdout, /Global Options:\n\s+-o, --output <format>/);
      assert.match(result.stdout, /--query <jmespath>/);
      assert.match(result.stdout, /--server <url>/);
    });
  }

  test('--version prints the version', async () => {
    const result = await cli.run('--version');
    assert.equal(result.code, 0);
    assert.equal(result.stdout, '0.0.0-test\n');
  });
});

describe('az compatibility of the command line', () => {
  test('-g/--resource-group and --subscription are accepted (and ignored)', async () => {
    const result = await cli.run('show', '-n', 'myregistry', '-g', 'myRG', '--subscription', 'sub');
    assert.equal(result.code, 1, result.stderr); // got past parsing, then found no server
    assert.match(result.stderr, /cannot connect to http:\/\/127\.0\.0\.1:9/);
  });
});

describe('value parsers', () => {
  test('booleans: true/false/yes/no in any case; a bare flag is true', () => {
    assert.equal(parseBoolean('TRUE'), true);
    assert.equal(parseBoolean('no'), false);
    assert.equal(parseBoolean(true), true);
    assert.throws(() => parseBoolean('1'), InvalidArgumentError);
  });

  test('choices are case-insensitive and canonicalised', () => {
    assert.equal(choiceParser(['Allow', 'Deny'] as const)('deny'), 'Deny');
  });

  test('image references', () => {
    assert.deepEqual(parseImageReference('team/app:v1'), { repository: 'team/app', tag: 'v1' });
    assert.deepEqual(parseImageReference('localhost:5000/app:v1'), {
      repository: 'localhost:5000/app',
      tag: 'v1',
    });
    assert.deepEqual(parseImageReference('app@sha256:abc'), { repository: 'app', digest: 'sha256:abc' });
    assert.throws(() => parseImageReference('app'), UsageError);
    assert.throws(() => parseImageReference('app:'), UsageError);
  });

  test('--since: durations count back from now; ISO times are normalised', () => {
    const now = () => Date.UTC(2026, 0, 2, 12, 0, 0);
    assert.equal(parseSince('30m', now), '2026-01-02T11:30:00.000Z');
    assert.equal(parseSince('2d', now), '2025-12-31T12:00:00.000Z');
    assert.equal(parseSince('2026-01-01T00:00:00+01:00'), '2025-12-31T23:00:00.000Z');
    assert.throws(() => parseSince('soon'), InvalidArgumentError);
  });

  test('check-health names the registry in Host when the data endpoint is a bare address', () => {
    assert.equal(registryHost('http://127.0.0.1:5000', 'myregistry.localhost'), 'myregistry.localhost:5000');
    assert.equal(registryHost('http://[::1]:5000/', 'r.localhost'), 'r.localhost:5000');
    assert.equal(registryHost('https://localhost', 'r.localhost'), 'r.localhost');
    assert.equal(registryHost('https://myregistry.example.com', 'myregistry.localhost'), undefined);
  });
});
