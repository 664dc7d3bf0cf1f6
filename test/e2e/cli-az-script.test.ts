// A shell script written for `az acr`, run unchanged against Berth: ported by `sed 's/az acr/berth/g'`
// with `berth` a shell function, and again through an `az` shim. Its output is asserted line by line.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  berthCommand,
  isolatedEnv,
  runBerth,
  startE2EServer,
  type E2EServer,
} from '../unit/cli/helpers/e2e.js';

// Written for the Azure CLI, as found in the wild: resource group and all.
const AZ_SCRIPT = `#!/usr/bin/env bash
# Lock the registry down to the office range.
set -euo pipefail
REGISTRY=myreg

az acr create --name $REGISTRY --resource-group myRG --sku Premium
echo "== created =="
az acr update --name $REGISTRY --default-action Deny --output none
az acr network-rule add --name $REGISTRY --ip-address 203.0.113.0/24 --output none
echo "default action: $(az acr show --name $REGISTRY --query networkRuleSet.defaultAction -o tsv)"
echo "rules: $(az acr network-rule list --name $REGISTRY --query 'ipRules[].ipAddressOrRange' -o tsv)"
LOGIN_SERVER=$(az acr show -n $REGISTRY --query loginServer --output tsv)
echo "login server: $LOGIN_SERVER"
az acr list --query "[?name=='$REGISTRY'].{Name:name, Sku:sku.name}" -o table
if az acr show --name nosuchregistry >/dev/null 2>&1; then
  echo "unexpected: nosuchregistry exists"
else
  echo "missing registry exit code: $?"
fi
az acr delete --name $REGISTRY --yes
echo "deleted"
`;

const EXPECTED_TAIL = [
  'default action: Deny',
  'rules: 203.0.113.0/24',
  'login server: myreg.localhost',
  'Name   Sku',
  '-----  -------',
  'myreg  Premium',
  'missing registry exit code: 3',
  'deleted',
  '',
].join('\n');

let server: E2EServer;
let env: Record<string, string>;
let dir: string;

before(async () => {
  server = await startE2EServer();
  ({ env } = isolatedEnv());
  dir = mkdtempSync(join(tmpdir(), 'berth-az-script-'));
  writeFileSync(join(dir, 'lockdown.sh'), AZ_SCRIPT);
  // As `az login` precedes an az script, `berth login` precedes the ported one.
  const login = await runBerth(
    ['login', '--server', server.managementUrl, '-u', server.username, '-p', server.password, '-o', 'none'],
    env,
  );
  assert.equal(login.code, 0, login.stderr);
});
after(() => server.stop());

/** Runs bash with `berth` defined as a function that runs the CLI under test. */
function bash(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const command = berthCommand();
  const berthFunction = `berth() { ${[command.file, ...command.args].map(shellQuote).join(' ')} "$@"; }\nexport -f berth\n`;
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', berthFunction + script],
      { cwd: dir, env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function assertScriptOutput(result: { code: number; stdout: string; stderr: string }): void {
  assert.equal(result.code, 0, `script failed\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  const [created, rest] = result.stdout.split('== created ==\n') as [string, string];
  const registry = JSON.parse(created) as Record<string, unknown>;
  assert.equal(registry.name, 'myreg');
  assert.deepEqual(registry.sku, { name: 'Premium', tier: 'Premium' });
  assert.equal(registry.provisioningState, 'Succeeded');
  assert.deepEqual(registry.networkRuleSet, { defaultAction: 'Allow', ipRules: [] });
  assert.equal(rest, EXPECTED_TAIL);
  assert.equal(result.stderr, '');
}

test("an az acr script ported with sed 's/az acr/berth/g' runs and prints what az would", async () => {
  const result = await bash(`sed 's/az acr/berth/g' lockdown.sh > lockdown-berth.sh
grep -q 'az acr' lockdown-berth.sh && { echo 'not ported' >&2; exit 99; }
bash lockdown-berth.sh`);
  assertScriptOutput(result);
});

test('the same script, unmodified, through an `az` shell function that hands `az acr` to berth', async () => {
  const result =
    await bash(`az() { if [ "$1" = acr ]; then shift; berth "$@"; else echo "az $1: not Berth" >&2; return 2; fi; }
export -f az
bash lockdown.sh`);
  assertScriptOutput(result);
});

test('a failing step stops a set -e script with berth’s exit code and ERROR: line', async () => {
  const result = await bash(`set -e
berth network-rule add --name nosuchregistry --ip-address 203.0.113.0/24 --output none
echo "not reached"`);
  assert.equal(result.code, 3);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /^ERROR: .*nosuchregistry.*not found/i);
});
