import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  apiFor,
  createRegistry,
  dataPlane,
  pushBlobTo,
  pushImageTo,
  sha256,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth; // grace 0: every unreferenced link is fair game at once
let graceful: TestBerth; // default grace (3600 s)
let racy: TestBerth; // grace 1 s: links age out while a push is under way
let api: Api;
before(async () => {
  [berth, graceful, racy] = await Promise.all([
    startTestBerth({ gc: { graceSeconds: 0 } }),
    startTestBerth(),
    startTestBerth({ gc: { graceSeconds: 1 } }),
  ]);
  api = apiFor(berth);
});
after(async () => {
  await Promise.all([berth.stop(), graceful.stop(), racy.stop()]);
});

function blobFile(b: TestBerth, registry: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(b.dataDir, 'blobs', registry, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

async function runGc(a: Api, name: string, dryRun = false) {
  const res = await a('POST', `/api/registries/${name}/gcRuns`, { dryRun });
  assert.equal(res.status, 200, res.text);
  return res.body as {
    status: string;
    dryRun: boolean;
    linksDropped: number;
    blobsDeleted: number;
    bytesReclaimed: number;
    blobs: { digest: string; size: number }[];
  };
}

/** The digests and sizes of a manifest's config and layers. */
async function blobsOf(b: TestBerth, registry: string, repo: string, digest: string) {
  const res = await dataPlane(b, registry, 'GET', `/v2/${repo}/manifests/${digest}`, {
    headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(res.status, 200);
  const manifest = JSON.parse(res.body.toString()) as {
    config: { digest: string; size: number };
    layers: { digest: string; size: number }[];
  };
  return [manifest.config, ...manifest.layers];
}

test('GC deletes blobs no manifest references, drops their links, and keeps what images need', async () => {
  const name = uniqueName('gc');
  await createRegistry(api, name);
  const kept = await pushImageTo(berth, name, 'app', 'v1');
  const doomedImage = await pushImageTo(berth, name, 'app', 'v2');
  const stray = randomBytes(4096);
  const strayDigest = await pushBlobTo(berth, name, 'app', stray);
  const doomedBlobs = await blobsOf(berth, name, 'app', doomedImage);
  assert.equal((await dataPlane(berth, name, 'DELETE', `/v2/app/manifests/${doomedImage}`)).status, 202);

  const dry = await runGc(api, name, true);
  assert.equal(dry.dryRun, true);
  assert.equal(dry.blobsDeleted, 3);
  const expectedBytes = stray.length + doomedBlobs.reduce((sum, b) => sum + b.size, 0);
  assert.equal(dry.bytesReclaimed, expectedBytes);
  assert.deepEqual(
    dry.blobs.map((b) => b.digest).sort(),
    [strayDigest, ...doomedBlobs.map((b) => b.digest)].sort(),
  );
  assert.ok(existsSync(blobFile(berth, name, strayDigest)), 'a dry run deletes nothing');

  const run = await runGc(api, name);
  assert.equal(run.status, 'Succeeded');
  assert.equal(run.blobsDeleted, 3);
  assert.equal(run.linksDropped, 3);
  assert.equal(run.bytesReclaimed, expectedBytes);
  assert.equal(existsSync(blobFile(berth, name, strayDigest)), false);
  for (const blob of doomedBlobs) assert.equal(existsSync(blobFile(berth, name, blob.digest)), false);
  for (const blob of await blobsOf(berth, name, 'app', kept)) {
    const res = await dataPlane(berth, name, 'GET', `/v2/app/blobs/${blob.digest}`);
    assert.equal(res.status, 200);
    assert.equal(sha256(res.body), blob.digest);
  }
  assert.equal((await runGc(api, name)).blobsDeleted, 0, 'a second run finds nothing');

  const bare = await api('POST', `/api/registries/${name}/gcRuns`);
  assert.equal(bare.status, 200, 'the action needs no body');
  assert.equal((bare.body as { dryRun: boolean }).dryRun, false);
  const bad = await api('POST', `/api/registries/${name}/gcRuns`, { dryRun: 'yes' });
  assert.equal(bad.status, 400);
  assert.equal((bad.body as { error: { code: string } }).error.code, 'InvalidRequestContent');
  const runs = await api('GET', `/api/registries/${name}/gcRuns`);
  assert.equal(runs.status, 200);
  const { value, totalBytesReclaimed } = runs.body as {
    value: { blobsDeleted: number; dryRun: boolean }[];
    totalBytesReclaimed: number;
  };
  assert.deepEqual(
    value.map((r) => r.blobsDeleted),
    [0, 0, 3],
    'dry runs are not recorded; newest first',
  );
  assert.equal(totalBytesReclaimed, expectedBytes);
});

test('a blob shared with another repository survives until no repository needs it', async () => {
  const name = uniqueName('gcshared');
  await createRegistry(api, name);
  const image = await pushImageTo(berth, name, 'one', 'v1');
  const [config] = await blobsOf(berth, name, 'one', image);
  assert.equal(
    (await dataPlane(berth, name, 'POST', `/v2/two/blobs/uploads/?mount=${config!.digest}&from=one`)).status,
    201,
  );
  assert.equal((await api('DELETE', `/api/registries/${name}/repositories/one`)).status, 204);
  // `two` links the config without a manifest: with grace 0 its link goes, and then the bytes.
  const run = await runGc(api, name);
  assert.equal(run.blobsDeleted, 2);
  assert.equal((await dataPlane(berth, name, 'HEAD', `/v2/two/blobs/${config!.digest}`)).status, 404);
});

test('within the grace period a pushed but unreferenced blob is kept', async () => {
  const gapi = apiFor(graceful);
  const name = uniqueName('gcgrace');
  await createRegistry(gapi, name);
  const digest = await pushBlobTo(graceful, name, 'app', randomBytes(2048));
  const run = await runGc(gapi, name);
  assert.equal(run.blobsDeleted, 0);
  assert.equal(run.linksDropped, 0);
  assert.equal((await dataPlane(graceful, name, 'HEAD', `/v2/app/blobs/${digest}`)).status, 200);
  // Unlinked by the client, it is no longer protected: deleted means gone.
  assert.equal((await dataPlane(graceful, name, 'DELETE', `/v2/app/blobs/${digest}`)).status, 202);
  assert.equal((await runGc(gapi, name)).blobsDeleted, 1);
  assert.equal(existsSync(blobFile(graceful, name, digest)), false);
});

/** Pushes an image whose manifest PUT may lose the race; re-pushes its blobs and retries then. */
async function pushRacing(b: TestBerth, name: string, repo: string, i: number, ageMs: number) {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', i, n: randomHex() }));
  const layers = [randomBytes(20_000 + i), randomBytes(1000 + i)];
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: layers.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: sha256(l),
        size: l.length,
      })),
    }),
  );
  let refused = 0;
  for (let attempt = 0; attempt < 50; attempt++) {
    for (const blob of [config, ...layers]) await pushBlobTo(b, name, repo, blob);
    // The first attempt lets the links age past the grace period, so its PUT races the sweep; a retry
    // after a refusal pushes again and goes straight on, as a client would.
    if (attempt === 0 && ageMs > 0) await new Promise((resolve) => setTimeout(resolve, ageMs));
    const res = await dataPlane(b, name, 'PUT', `/v2/${repo}/manifests/t${i}`, {
      body: manifest,
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    if (res.status === 201) return { repo, tag: `t${i}`, blobs: [config, ...layers], refused };
    assert.equal(res.status, 404, res.body.toString());
    assert.match(res.body.toString(), /MANIFEST_BLOB_UNKNOWN/);
    refused++;
  }
  throw new Error(`push ${i} never won the race`);
}

function randomHex(): string {
  return randomBytes(6).toString('hex');
}

async function raceGcAgainstPushes(b: TestBerth, a: Api, ageMs: number) {
  const name = uniqueName('gcrace');
  await createRegistry(a, name);
  let done = false;
  let runs = 0;
  const collector = (async () => {
    for (let i = 0; i < 10_000 && !done; i++) {
      await runGc(a, name);
      runs++;
    }
  })();
  const pushes = await Promise.all(
    Array.from({ length: 20 }, (_, i) => pushRacing(b, name, `race/r${i % 5}`, i, ageMs)),
  ).finally(() => (done = true));
  await collector;
  await runGc(a, name);
  for (const push of pushes) {
    for (const blob of push.blobs) {
      const res = await dataPlane(b, name, 'GET', `/v2/${push.repo}/blobs/${sha256(blob)}`);
      assert.equal(res.status, 200, `blob of ${push.repo}:${push.tag} lost`);
      assert.ok(res.body.equals(blob));
    }
  }
  return { runs, refused: pushes.reduce((sum, p) => sum + p.refused, 0) };
}

test('GC racing 20 concurrent manifest PUTs over aged links: none commits without its blobs', async () => {
  const { runs } = await raceGcAgainstPushes(racy, apiFor(racy), 1200);
  assert.ok(runs >= 1);
});

test('GC racing 20 concurrent pushes within the grace period: every push succeeds first time', async () => {
  const { refused } = await raceGcAgainstPushes(graceful, apiFor(graceful), 0);
  assert.equal(refused, 0);
});
