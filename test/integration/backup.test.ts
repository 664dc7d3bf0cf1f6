import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { apiFor, createRegistry, dataPlane, pushImageTo, uniqueName } from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let berth: TestBerth;
const scratch = mkdtempSync(join(tmpdir(), 'berth-backup-'));

before(async () => {
  berth = await startTestBerth();
});
after(async () => {
  await berth.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** `berth-server <args>` as a subprocess (the TypeScript entry point through tsx). */
function berthServer(
  args: string[],
  dataDir: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/main.ts'), ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', BERTH_DATA_DIR: dataDir, ...env }, timeout: 120_000 },
      (error, stdout, stderr) =>
        done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Every blob and manifest of an image, as bytes, read back over the data plane. */
async function pullImage(b: Pick<TestBerth, 'url'>, registry: string, repo: string, tag: string) {
  const manifest = await dataPlane(b, registry, 'GET', `/v2/${repo}/manifests/${tag}`, {
    headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (manifest.status !== 200) return undefined;
  const doc = JSON.parse(manifest.body.toString()) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
  const blobs: Buffer[] = [];
  for (const d of [doc.config, ...doc.layers]) {
    const res = await dataPlane(b, registry, 'GET', `/v2/${repo}/blobs/${d.digest}`);
    assert.equal(res.status, 200, `blob ${d.digest} of ${repo}:${tag}`);
    blobs.push(res.body);
  }
  return { manifest: manifest.body, blobs };
}

test('backup while pushes run, restore into a new data dir, start, pull everything byte for byte', async () => {
  const api = apiFor(berth);
  const name = uniqueName('backup');
  await createRegistry(api, name);
  const before: string[] = [];
  for (let i = 0; i < 5; i++) {
    await pushImageTo(berth, name, `app${i % 2}`, `v${i}`);
    before.push(`app${i % 2}:v${i}`);
  }
  const backupDir = join(scratch, 'copy');
  let pushing = true;
  const during: string[] = [];
  const pusher = (async () => {
    for (let i = 0; i < 200 && pushing; i++) {
      await pushImageTo(berth, name, 'busy', `d${i}`);
      during.push(`busy:d${i}`);
    }
  })();
  const backup = await berthServer(['backup', '--to', backupDir], berth.dataDir);
  pushing = false;
  await pusher;
  assert.equal(backup.code, 0, backup.stderr);
  const summary = JSON.parse(backup.stdout) as { command: string; blobs: number; bytes: number };
  assert.equal(summary.command, 'backup');
  assert.ok(summary.blobs >= 10, `backed up ${summary.blobs} blobs`);

  // Restoring needs an empty target; a non-empty one is refused.
  assert.notEqual(
    (await berthServer(['restore', '--from', backupDir, '--data-dir', berth.dataDir], '')).code,
    0,
  );
  const restoredDir = join(scratch, 'restored');
  const restore = await berthServer(['restore', '--from', backupDir, '--data-dir', restoredDir], '');
  assert.equal(restore.code, 0, restore.stderr);

  const restored = await startTestBerth({ dataDir: restoredDir });
  try {
    for (const image of [...before, ...during]) {
      const [repo, tag] = image.split(':') as [string, string];
      const original = await pullImage(berth, name, repo, tag);
      const copy = await pullImage(restored, name, repo, tag);
      if (before.includes(image)) assert.ok(copy, `${image} pushed before the backup must be restored`);
      // An image pushed while the backup ran is either wholly in it or not at all.
      if (copy) assert.deepEqual(copy, original);
    }
  } finally {
    await restored.close();
  }
});

test('with secretKeyFile outside the data directory, backup keeps that key and restore puts it back there, never over another', async () => {
  const keyFile = join(scratch, 'shared.key');
  copyFileSync(join(berth.dataDir, 'berth.key'), keyFile);
  const backupDir = join(scratch, 'keyed-backup');
  const env = { BERTH_SECRET_KEY_FILE: keyFile };
  const backup = await berthServer(['backup', '--to', backupDir], berth.dataDir, env);
  assert.equal(backup.code, 0, backup.stderr);
  assert.deepEqual(readFileSync(join(backupDir, 'berth.key')), readFileSync(keyFile));

  // Restored where the new server's secretKeyFile points.
  const restoredKey = join(scratch, 'restored.key');
  const restored = await berthServer(
    ['restore', '--from', backupDir, '--data-dir', join(scratch, 'keyed-restored')],
    '',
    { BERTH_SECRET_KEY_FILE: restoredKey },
  );
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(readFileSync(restoredKey), readFileSync(keyFile));

  // A different key already at that path is not replaced: the restore fails, naming it.
  const otherKey = join(scratch, 'other.key');
  writeFileSync(otherKey, Buffer.alloc(32, 7), { mode: 0o600 });
  const refused = await berthServer(
    ['restore', '--from', backupDir, '--data-dir', join(scratch, 'keyed-refused')],
    '',
    { BERTH_SECRET_KEY_FILE: otherKey },
  );
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /holds another sealing key/);
  assert.deepEqual(readFileSync(otherKey), Buffer.alloc(32, 7));
});
