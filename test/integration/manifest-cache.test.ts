import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  apiFor,
  createRegistry,
  dataPlane,
  pushImageTo,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

// The manifest cache seen from outside: every read answers the newest state on this node at once, and a
// warm GET or HEAD reads nothing from the metadata store (its operation counts on /metrics stand still).

let berth: TestBerth;
let api: Api;
before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
});
after(async () => berth.stop());

const MANIFEST_READS = ['resolveTag', 'getManifest'];

/** How many times the metadata store was asked for a tag or a manifest, from the /metrics counters. */
async function storeReads(): Promise<number> {
  const text = await (await fetch(`${berth.managementUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^berth_store_operation_duration_seconds_count\{([^}]*)\} (\d+)/.exec(line);
    if (!match) continue;
    const labels = match[1]!;
    if (
      labels.includes('store="metadata"') &&
      MANIFEST_READS.some((op) => labels.includes(`operation="${op}"`))
    )
      total += Number(match[2]);
  }
  return total;
}

async function get(registry: string, repo: string, reference: string, method = 'GET') {
  const res = await dataPlane(berth, registry, method, `/v2/${repo}/manifests/${reference}`);
  return { status: res.status, digest: res.headers['docker-content-digest'], body: res.body };
}

test('a warm manifest GET and HEAD, by tag and by digest, reads nothing from the metadata store', async () => {
  const name = uniqueName('mcwarm');
  await createRegistry(api, name);
  const digest = await pushImageTo(berth, name, 'app', 'v1');
  // Cold: these load the tag and the manifest.
  assert.equal((await get(name, 'app', 'v1')).digest, digest);
  assert.equal((await get(name, 'app', digest)).digest, digest);
  const before = await storeReads();
  for (let i = 0; i < 5; i++) {
    for (const reference of ['v1', digest]) {
      const res = await get(name, 'app', reference);
      assert.equal(res.status, 200);
      assert.equal(res.digest, digest);
      const head = await get(name, 'app', reference, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
    }
  }
  assert.equal(await storeReads(), before, 'warm reads went to the metadata store');
});

test('every read sees the new state at once: tag moved, untagged, manifest deleted, repository deleted', async () => {
  const name = uniqueName('mcmove');
  await createRegistry(api, name);
  const first = await pushImageTo(berth, name, 'app', 'v1');
  assert.equal((await get(name, 'app', 'v1')).digest, first);
  assert.equal((await get(name, 'app', 'v1')).digest, first);

  const second = await pushImageTo(berth, name, 'app', 'v1');
  assert.notEqual(second, first);
  assert.equal((await get(name, 'app', 'v1')).digest, second, 'the moved tag was served from a stale cache');
  assert.equal((await get(name, 'app', first)).digest, first, 'the old manifest stays addressable');

  // A tag untagged: by tag 404, by digest still there.
  await pushImageTo(berth, name, 'app', 'v2');
  assert.equal((await get(name, 'app', 'v2')).status, 200);
  assert.equal((await dataPlane(berth, name, 'DELETE', `/v2/app/manifests/v2`)).status, 202);
  assert.equal((await get(name, 'app', 'v2')).status, 404);

  // The manifest deleted by digest: its tags and the digest are gone.
  assert.equal((await get(name, 'app', second)).status, 200);
  assert.equal((await dataPlane(berth, name, 'DELETE', `/v2/app/manifests/${second}`)).status, 202);
  assert.equal((await get(name, 'app', 'v1')).status, 404);
  assert.equal((await get(name, 'app', second)).status, 404);
  // A manifest served as a blob goes too.
  assert.equal((await dataPlane(berth, name, 'HEAD', `/v2/app/blobs/${second}`)).status, 404);

  // The repository deleted through the management API.
  await pushImageTo(berth, name, 'app', 'v3');
  const third = (await get(name, 'app', 'v3')).digest;
  assert.equal((await get(name, 'app', first)).digest, first);
  assert.equal((await api('DELETE', `/api/registries/${name}/repositories/app`)).status, 204);
  for (const reference of ['v3', String(third), first])
    assert.equal((await get(name, 'app', reference)).status, 404);
});

test('a registry deleted and created again under its name serves nothing of the old one', async () => {
  const name = uniqueName('mcrecreate');
  await createRegistry(api, name);
  const old = await pushImageTo(berth, name, 'app', 'v1');
  assert.equal((await get(name, 'app', 'v1')).digest, old);
  assert.equal((await get(name, 'app', old)).digest, old);
  assert.equal((await api('DELETE', `/api/registries/${name}`)).status, 204);
  await createRegistry(api, name);
  assert.equal((await get(name, 'app', 'v1')).status, 404);
  assert.equal((await get(name, 'app', old)).status, 404);
  const fresh = await pushImageTo(berth, name, 'app', 'v1');
  assert.equal((await get(name, 'app', 'v1')).digest, fresh);
});

test('a manifest removed by the retention policy is gone for reads at once', async () => {
  const name = uniqueName('mcretain');
  await createRegistry(api, name);
  const digest = await pushImageTo(berth, name, 'app', 'v1');
  assert.equal((await dataPlane(berth, name, 'DELETE', `/v2/app/manifests/v1`)).status, 202);
  assert.equal((await get(name, 'app', digest)).status, 200);
  assert.equal((await get(name, 'app', digest)).status, 200);
  const policy = await api('PATCH', `/api/registries/${name}/retentionPolicy`, {
    days: 0,
    status: 'enabled',
  });
  assert.equal(policy.status, 200, policy.text);
  const run = await api('POST', `/api/registries/${name}/gcRuns`, {});
  assert.ok(run.status === 200 || run.status === 201, run.text);
  assert.equal(run.body.manifestsDeleted, 1, run.text);
  assert.equal((await get(name, 'app', digest)).status, 404);
});
