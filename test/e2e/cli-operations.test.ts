// `berth run-gc`, `show-gc-runs` and `config retention` as a subprocess against a real Berth: untagged
// manifests older than the policy's days go, then their blobs, and show-usage drops.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { createRegistry, apiFor, pushImageTo, dataPlane } from '../helpers/management.js';
import { startTestBerth, TEST_ADMIN_PASSWORD, type TestBerth } from '../helpers/server.js';
import { isolatedEnv, runBerth, type ProcessResult } from '../unit/cli/helpers/e2e.js';

let server: TestBerth;
let env: Record<string, string>;
const REG = 'cliopsreg';

before(async () => {
  server = await startTestBerth({ gc: { graceSeconds: 0, intervalSeconds: 0 } });
  env = {
    ...isolatedEnv().env,
    BERTH_SERVER: server.managementUrl,
    BERTH_USERNAME: 'admin',
    BERTH_PASSWORD: TEST_ADMIN_PASSWORD,
  };
  await createRegistry(apiFor(server), REG);
});
after(async () => {
  await server.stop();
});

async function berth(args: string[], expectCode = 0): Promise<ProcessResult> {
  const result = await runBerth(args, env);
  assert.equal(result.code, expectCode, `berth ${args.join(' ')}\n${result.stdout}\n${result.stderr}`);
  return result;
}

const json = (result: ProcessResult) => JSON.parse(result.stdout) as Record<string, unknown>;

async function storageBytes(): Promise<number> {
  const usages = json(await berth(['show-usage', '-n', REG])) as {
    value: { name: string; currentValue: number }[];
  };
  return usages.value.find((u) => u.name === 'Size')!.currentValue;
}

test('retention update/show, run-gc --dry-run, run-gc and show-gc-runs', async () => {
  assert.deepEqual(json(await berth(['config', 'retention', 'show', '-n', REG])), {
    type: 'UntaggedManifests',
    days: 7,
    status: 'disabled',
    lastUpdatedTime: null,
  });
  const kept = await pushImageTo(server, REG, 'app', 'stable');
  const untagged = await pushImageTo(server, REG, 'app', 'old');
  assert.equal((await dataPlane(server, REG, 'DELETE', `/v2/app/manifests/old`)).status, 202);
  const before = await storageBytes();

  // Seven days is longer than the manifest has existed: nothing goes yet.
  await berth([
    'config',
    'retention',
    'update',
    '-n',
    REG,
    '--status',
    'enabled',
    '--type',
    'UntaggedManifests',
  ]);
  assert.equal(json(await berth(['run-gc', '-n', REG])).manifestsDeleted, 0);
  assert.equal((await dataPlane(server, REG, 'HEAD', `/v2/app/manifests/${untagged}`)).status, 200);

  const policy = json(await berth(['config', 'retention', 'update', '-n', REG, '--days', '0']));
  assert.equal(policy.days, 0);
  assert.equal(policy.status, 'enabled');
  assert.equal(typeof policy.lastUpdatedTime, 'string');

  const dry = json(await berth(['run-gc', '-n', REG, '--dry-run']));
  assert.equal(dry.dryRun, true);
  assert.equal(dry.manifestsDeleted, 1);
  assert.equal((await dataPlane(server, REG, 'HEAD', `/v2/app/manifests/${untagged}`)).status, 200);

  const run = json(await berth(['run-gc', '-n', REG]));
  assert.equal(run.manifestsDeleted, 1);
  assert.equal(run.blobsDeleted, 2);
  assert.ok((run.bytesReclaimed as number) > 0);
  assert.equal((await dataPlane(server, REG, 'HEAD', `/v2/app/manifests/${untagged}`)).status, 404);
  assert.equal((await dataPlane(server, REG, 'HEAD', `/v2/app/manifests/${kept}`)).status, 200);
  const afterGc = await storageBytes();
  assert.ok(afterGc < before, `usage ${afterGc} should drop below ${before}`);

  const table = await berth(['show-gc-runs', '-n', REG, '-o', 'table']);
  assert.match(table.stdout, /STARTED\s+TRIGGER\s+BLOBS\s+BYTES\s+STATUS/);
  assert.match(table.stdout, /manual\s+2\s+\d+\s+Succeeded/);

  await berth(['config', 'retention', 'update', '-n', REG, '--days', '400'], 2);
  await berth(['config', 'retention', 'update', '-n', REG, '--status', 'sometimes'], 2);
  await berth(['run-gc', '-n', 'nosuchreg1'], 3);
});

test('webhook create, list, show, ping, list-events, update and delete', async () => {
  const bodies: string[] = [];
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(`${req.headers['x-team'] ?? ''} ${Buffer.concat(chunks).toString()}`);
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const address = receiver.address();
  const uri = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/in`;
  try {
    const created = json(
      await berth([
        'webhook',
        'create',
        '-r',
        REG,
        '-n',
        'clihook1',
        '--uri',
        uri,
        '--actions',
        'push',
        'delete',
        '--scope',
        'app:*',
        '--headers',
        'X-Team=platform',
        'Y=1',
      ]),
    ) as { secret: string; properties: { actions: string[]; customHeaderNames: string[]; scope: string } };
    assert.equal(typeof created.secret, 'string');
    assert.deepEqual(created.properties.actions, ['push', 'delete']);
    assert.deepEqual(created.properties.customHeaderNames, ['X-Team', 'Y']);
    assert.equal(created.properties.scope, 'app:*');
    await berth(['webhook', 'create', '-r', REG, '-n', 'clihook2'], 2);
    await berth(['webhook', 'create', '-r', REG, '-n', 'clihook2', '--uri', uri, '--actions', 'pull'], 2);

    const table = await berth(['webhook', 'list', '-r', REG, '-o', 'table']);
    assert.match(table.stdout, /clihook1\s+enabled\s+push,delete\s+http:\/\/127\.0\.0\.1/);
    assert.equal(
      (json(await berth(['webhook', 'show', '-r', REG, '-n', 'clihook1'])) as { name: string }).name,
      'clihook1',
    );

    const ping = json(await berth(['webhook', 'ping', '-r', REG, '-n', 'clihook1'])) as { id: string };
    for (let i = 0; i < 100 && bodies.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(bodies.length, 1);
    assert.ok(bodies[0]!.startsWith('platform '), 'custom header sent');
    assert.equal((JSON.parse(bodies[0]!.slice('platform '.length)) as { id: string }).id, ping.id);

    let events: { id: string; status: string; eventResponseMessage: { statusCode: number } }[] = [];
    for (let i = 0; i < 100; i++) {
      events = JSON.parse(
        (await berth(['webhook', 'list-events', '-r', REG, '-n', 'clihook1'])).stdout,
      ) as typeof events;
      if (events[0]?.status === 'delivered') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(events[0]!.id, ping.id);
    assert.equal(events[0]!.eventResponseMessage.statusCode, 202);

    const updated = json(
      await berth(['webhook', 'update', '-r', REG, '-n', 'clihook1', '--status', 'disabled']),
    ) as {
      properties: { status: string };
    };
    assert.equal(updated.properties.status, 'disabled');
    await berth(['webhook', 'delete', '-r', REG, '-n', 'clihook1']);
    await berth(['webhook', 'show', '-r', REG, '-n', 'clihook1'], 3);
  } finally {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  }
});
