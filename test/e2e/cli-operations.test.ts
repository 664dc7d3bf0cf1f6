// `berth run-gc`, `show-gc-runs` and `config retention` as a subprocess against a real Berth: untagged
// manifests older than the policy's days go, then their blobs, and show-usage drops.

import assert from 'node:assert/strict';
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
