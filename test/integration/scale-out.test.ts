// Three Berth nodes over one PostgreSQL database and one Azurite container: what one node does, the
// others see — images, uploads, network rules, revoked credentials, JWTs and the denial log — and a
// node killed in the middle of pushes loses nothing any client was told had been stored.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { before, test, type TestContext } from 'node:test';
import { bearerToken, fetchToken } from '../helpers/auth.js';
import type { ChildBerth } from '../helpers/child-server.js';
import {
  pushLayoutArgs,
  registryHost,
  requireTool,
  runOk,
  signInContainers,
  testTempDir,
  writeContainersConfig,
} from '../helpers/e2e.js';
import { apiFor, basic, createRegistry, dataPlane, sha256 } from '../helpers/management.js';
import { DEFAULT_REGISTRY, endpointOf, freePort, holdConnection, send } from '../helpers/net.js';
import { descriptorOf, imageManifest, MT } from '../helpers/oci.js';
import { layoutBlobs, layoutRef, writeMultiArchLayout } from '../helpers/oci-layout.js';
import { startScaleOut, type ScaleOut } from '../helpers/scale-out.js';

/** How often a test looks again for a change to arrive on another node (20 ms apart: at most 10 s). */
const POLLS = 500;
const POLL_MS = 20;

let cluster: ScaleOut | undefined;
let setupError: unknown;

before(async (context) => {
  try {
    cluster = await startScaleOut(context as unknown as TestContext, 3);
  } catch (error) {
    setupError = error;
  }
});

/** The running deployment, or undefined when the test was skipped (PostgreSQL or Azurite missing). */
async function deployment(t: TestContext): Promise<ChildBerth[] | undefined> {
  if (setupError) throw setupError;
  if (!cluster) {
    // Repeat the reason (and the failure under BERTH_REQUIRE_E2E=1) for this test.
    await startScaleOut(t, 0);
    return undefined;
  }
  return cluster.nodes;
}

/** Polls `check` up to POLLS times; returns whether it became true (the caller asserts). */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < POLLS; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return false;
}

test('skopeo pushes a multi-arch image through node 1 and pulls it through node 3 byte for byte', async (t) => {
  const skopeo = requireTool(t, 'skopeo');
  if (!skopeo) return;
  const nodes = await deployment(t);
  if (!nodes) return;
  const dir = testTempDir(t);
  const containers = writeContainersConfig(dir);
  const [one, , three] = nodes as [ChildBerth, ChildBerth, ChildBerth];
  for (const node of [one, three]) signInContainers(containers, registryHost(node.url));
  const layout = writeMultiArchLayout(join(dir, 'in'));
  await runOk(
    skopeo,
    pushLayoutArgs(containers, layout.dir, `docker://${registryHost(one.url)}/scale/multi:v1`),
    {
      env: containers.env,
    },
  );
  const out = join(dir, 'out');
  await runOk(
    skopeo,
    [
      'copy',
      '--policy',
      containers.policy,
      '--all',
      '--src-tls-verify=false',
      `docker://${registryHost(three.url)}/scale/multi:v1`,
      `oci:${out}:v1`,
    ],
    { env: containers.env },
  );
  assert.equal(layoutRef(out, 'v1')?.digest, layout.index.digest);
  const sent = layoutBlobs(layout.dir);
  const received = layoutBlobs(out);
  assert.deepEqual([...received.keys()].sort(), [...sent.keys()].sort());
  for (const [digest, bytes] of sent)
    assert.ok(received.get(digest)?.equals(bytes), `blob ${digest} differs after node 1 → node 3`);
});

test('a chunked upload started on node 1, continued on node 2 and finished on node 3 verifies', async (t) => {
  const nodes = await deployment(t);
  if (!nodes) return;
  const [one, two, three] = nodes as [ChildBerth, ChildBerth, ChildBerth];
  const blob = randomBytes(3 * 1024 * 1024 + 17);
  const digest = sha256(blob);
  const parts = [
    blob.subarray(0, 1024 * 1024),
    blob.subarray(1024 * 1024, 2 * 1024 * 1024),
    blob.subarray(2 * 1024 * 1024),
  ];
  const started = await dataPlane(one, DEFAULT_REGISTRY, 'POST', '/v2/scale/chunks/blobs/uploads/');
  assert.equal(started.status, 202, started.body.toString());
  let location = new URL(String(started.headers.location), one.url);
  const patch = async (node: ChildBerth, from: number, part: Buffer) => {
    const res = await dataPlane(node, DEFAULT_REGISTRY, 'PATCH', location.pathname + location.search, {
      body: part,
      headers: { 'Content-Range': `${from}-${from + part.length - 1}` },
    });
    assert.equal(res.status, 202, `PATCH on ${node.url}: ${res.body.toString()}`);
    assert.equal(res.headers.range, `0-${from + part.length - 1}`);
    location = new URL(String(res.headers.location), node.url);
  };
  await patch(one, 0, parts[0]!);
  await patch(two, parts[0]!.length, parts[1]!);
  const status = await dataPlane(three, DEFAULT_REGISTRY, 'GET', location.pathname + location.search);
  assert.equal(status.status, 204);
  assert.equal(
    status.headers.range,
    `0-${2 * 1024 * 1024 - 1}`,
    'node 3 sees the bytes nodes 1 and 2 accepted',
  );
  const sep = location.search ? '&' : '?';
  const put = await dataPlane(
    three,
    DEFAULT_REGISTRY,
    'PUT',
    `${location.pathname}${location.search}${sep}digest=${digest}`,
    {
      body: parts[2]!,
      headers: { 'Content-Range': `${2 * 1024 * 1024}-${blob.length - 1}` },
    },
  );
  assert.equal(put.status, 201, put.body.toString());
  assert.equal(put.headers['docker-content-digest'], digest);
  for (const node of nodes) {
    const got = await dataPlane(node, DEFAULT_REGISTRY, 'GET', `/v2/scale/chunks/blobs/${digest}`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(blob), `node ${node.url} serves the bytes of the upload`);
  }
});

test('a rule change on node 1 refuses the next requests on nodes 2 and 3, also on an open keep-alive connection', async (t) => {
  const nodes = await deployment(t);
  if (!nodes) return;
  const [one, two, three] = nodes as [ChildBerth, ChildBerth, ChildBerth];
  const registry = `rules${Date.now() % 100000}`;
  await createRegistry(apiFor(one), registry);
  const path = '/v2/';
  const host = `${registry}.localhost`;
  // Opened before the change, and kept open across it.
  const held = await holdConnection(endpointOf(two.url), '127.0.0.3');
  t.after(() => held.socket.destroy());
  assert.equal(await held.get(path, host), 200);
  for (const node of [two, three])
    assert.equal((await dataPlane(node, registry, 'GET', path, { from: '127.0.0.3' })).status, 200);

  const changed = await apiFor(one)('PATCH', `/api/registries/${registry}`, {
    properties: {
      networkRuleSet: { defaultAction: 'Deny', ipRules: [{ action: 'Allow', value: '127.0.0.2' }] },
    },
  });
  assert.equal(changed.status, 200, changed.text);
  for (const node of [two, three]) {
    const refused = await eventually(
      async () => (await dataPlane(node, registry, 'GET', path, { from: '127.0.0.3' })).status === 403,
    );
    assert.ok(refused, `node ${node.url} refuses 127.0.0.3 after the change on node 1`);
    assert.equal(
      (await dataPlane(node, registry, 'GET', path, { from: '127.0.0.2' })).status,
      200,
      'the allowed address still passes',
    );
  }
  const heldRefused = await eventually(async () => {
    const status = await held.get(path, host).catch(() => 0);
    return status === 403 || status === 0;
  });
  assert.ok(heldRefused, 'the connection opened before the change is refused (or closed) too');

  // Removing the allow rule on node 1 refuses 127.0.0.2 on the others as well.
  const removed = await apiFor(one)('PATCH', `/api/registries/${registry}`, {
    properties: { networkRuleSet: { ipRules: [] } },
  });
  assert.equal(removed.status, 200, removed.text);
  for (const node of [two, three]) {
    const refused = await eventually(
      async () => (await dataPlane(node, registry, 'GET', path, { from: '127.0.0.2' })).status === 403,
    );
    assert.ok(refused, `node ${node.url} refuses 127.0.0.2 once its rule was removed on node 1`);
  }
});

/** Creates a scope map and a token on node `via`; returns the token's first password. */
async function createToken(via: ChildBerth, registry: string, name: string): Promise<string> {
  const api = apiFor(via);
  const map = await api('PUT', `/api/registries/${registry}/scopeMaps/${name}-map`, {
    properties: { actions: ['repositories/scale/*/content/read'] },
  });
  assert.equal(map.status, 201, map.text);
  const token = await api('PUT', `/api/registries/${registry}/tokens/${name}`, {
    properties: { scopeMapId: `/registries/${registry}/scopeMaps/${name}-map` },
  });
  assert.equal(token.status, 201, token.text);
  const generated = await api('POST', `/api/registries/${registry}/generateCredentials`, { tokenId: name });
  assert.equal(generated.status, 200, generated.text);
  return (generated.body.passwords as { value: string }[])[0]!.value;
}

test('a JWT issued by node 1 works on node 2; a token disabled on node 1 is refused on node 2', async (t) => {
  const nodes = await deployment(t);
  if (!nodes) return;
  const [one, two] = nodes as [ChildBerth, ChildBerth];
  const name = `tok${Date.now() % 100000}`;
  const password = await createToken(one, DEFAULT_REGISTRY, name);
  const scope = ['repository:scale/chunks:pull'];
  const jwt = await fetchToken(one, DEFAULT_REGISTRY, name, password, scope);
  const tags = '/v2/scale/chunks/tags/list';
  const withJwt = await dataPlane(two, DEFAULT_REGISTRY, 'GET', tags, {
    headers: { Authorization: bearerToken(jwt.token) },
  });
  assert.notEqual(withJwt.status, 401, `node 2 verifies node 1's JWT: ${withJwt.body.toString()}`);
  assert.notEqual(withJwt.status, 403);
  const withBasic = await dataPlane(two, DEFAULT_REGISTRY, 'GET', tags, {
    headers: { Authorization: basic(name, password) },
  });
  assert.notEqual(withBasic.status, 401, withBasic.body.toString());

  const disabled = await apiFor(one)('PATCH', `/api/registries/${DEFAULT_REGISTRY}/tokens/${name}`, {
    properties: { status: 'disabled' },
  });
  assert.equal(disabled.status, 200, disabled.text);
  const basicRefused = await eventually(
    async () =>
      (
        await dataPlane(two, DEFAULT_REGISTRY, 'GET', tags, {
          headers: { Authorization: basic(name, password) },
        })
      ).status === 401,
  );
  assert.ok(basicRefused, 'node 2 refuses the disabled token’s password');
  const jwtRefused = await eventually(
    async () =>
      (
        await dataPlane(two, DEFAULT_REGISTRY, 'GET', tags, {
          headers: { Authorization: bearerToken(jwt.token) },
        })
      ).status === 401,
  );
  assert.ok(jwtRefused, 'node 2 refuses the JWT node 1 issued for the disabled token');
});

test('the denial log written by all nodes shows the sum of their refusals', async (t) => {
  const nodes = await deployment(t);
  if (!nodes) return;
  const [one] = nodes as [ChildBerth];
  const registry = `deny${Date.now() % 100000}`;
  await createRegistry(apiFor(one), registry);
  const patched = await apiFor(one)('PATCH', `/api/registries/${registry}`, {
    properties: { networkRuleSet: { defaultAction: 'Deny' } },
  });
  assert.equal(patched.status, 200, patched.text);
  const perNode = [4, 5, 6];
  for (const [index, node] of nodes.entries()) {
    let refused = 0;
    // The rule may reach the node a moment after the change; count only what it refused.
    for (let i = 0; i < 50 && refused < perNode[index]!; i++)
      if ((await dataPlane(node, registry, 'GET', '/v2/', { from: '127.0.0.3' })).status === 403) refused++;
    assert.equal(refused, perNode[index]);
  }
  const total = perNode.reduce((a, b) => a + b, 0);
  let seen = 0;
  const summed = await eventually(async () => {
    const res = await apiFor(nodes[2]!)('GET', `/api/registries/${registry}/networkDenials`);
    assert.equal(res.status, 200, res.text);
    seen = (res.body.value as { clientIp: string; count: number }[])
      .filter((entry) => entry.clientIp === '127.0.0.3')
      .reduce((sum, entry) => sum + entry.count, 0);
    return seen === total;
  });
  assert.ok(summed, `the denial log counts ${seen} refusals of 127.0.0.3, the nodes refused ${total}`);
});

test('a private endpoint created through node 1 is served by the node that binds it and closed when deleted through node 3', async (t) => {
  const nodes = await deployment(t);
  if (!nodes) return;
  const [one, , three] = nodes as [ChildBerth, ChildBerth, ChildBerth];
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const path = `/api/registries/${DEFAULT_REGISTRY}/privateEndpointConnections/scale-pe`;
  const created = await apiFor(one)('PUT', path, {
    properties: {
      privateEndpoint: { address: `127.0.0.1:${port}` },
      privateLinkServiceConnectionState: { status: 'Approved' },
    },
  });
  assert.ok(created.status === 201 || created.status === 200, created.text);
  // One node on this machine holds the address; the others skip it (EADDRINUSE) and keep serving.
  const served = await eventually(async () =>
    send(url, '/v2/', { timeoutMs: 2_000 }).then(
      (res) => res.status === 200,
      () => false,
    ),
  );
  assert.ok(served, 'the endpoint answers once a node opened it');
  for (const node of nodes)
    assert.equal((await send(node.url, '/v2/')).status, 200, 'every node still serves');
  const deleted = await apiFor(three)('DELETE', path);
  assert.ok(deleted.status === 200 || deleted.status === 204, deleted.text);
  const closed = await eventually(async () =>
    send(url, '/v2/', { timeoutMs: 2_000 }).then(
      () => false,
      (error: NodeJS.ErrnoException) => error.code === 'ECONNREFUSED',
    ),
  );
  assert.ok(closed, 'deleted through node 3, the listener closes on whichever node had it');
});

/** One client's push: config and layer blobs, then the manifest; what the registry acknowledged. */
interface PushRecord {
  blobs: Map<string, Buffer>;
  manifest?: { digest: string; bytes: Buffer; tag: string };
}

async function pushOnce(node: ChildBerth, repo: string, tag: string, record: PushRecord): Promise<void> {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }),
  );
  const layer = randomBytes(256 * 1024);
  for (const blob of [config, layer]) {
    const res = await dataPlane(
      node,
      DEFAULT_REGISTRY,
      'POST',
      `/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`,
      { body: blob },
    );
    if (res.status !== 201) throw new Error(`blob push got ${res.status}`);
    record.blobs.set(sha256(blob), blob);
  }
  const manifest = Buffer.from(
    JSON.stringify(imageManifest(descriptorOf(MT.ociConfig, config), [descriptorOf(MT.ociLayer, layer)])),
  );
  const res = await dataPlane(node, DEFAULT_REGISTRY, 'PUT', `/v2/${repo}/manifests/${tag}`, {
    body: manifest,
    headers: { 'Content-Type': MT.ociManifest },
  });
  if (res.status !== 201) throw new Error(`manifest push got ${res.status}`);
  record.manifest = { digest: sha256(manifest), bytes: manifest, tag };
}

test('kill -9 of a node in the middle of 20 concurrent pushes loses nothing acknowledged; clients retry on another node', async (t) => {
  const nodes = await deployment(t);
  if (!nodes || !cluster) return;
  const victim = 1;
  const records: PushRecord[] = [];
  let retries = 0;
  const clients = Array.from({ length: 20 }, async (_, i) => {
    const record: PushRecord = { blobs: new Map() };
    records.push(record);
    let target = i % 3;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await pushOnce(cluster!.nodes[target]!, `crash/c${i}`, 'v1', record);
        return;
      } catch (error) {
        if (attempt === 2) throw error;
        retries++;
        // The client retries on another node, never the one being killed.
        target = target === 0 ? 2 : 0;
      }
    }
  });
  // Kill once some pushes were acknowledged and others are still in flight.
  const killer = (async () => {
    for (let i = 0; i < 500 && records.filter((r) => r.blobs.size > 0).length < 4; i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    await nodes[victim]!.kill9();
  })();
  const results = await Promise.allSettled(clients);
  await killer;
  const failed = results.filter((r) => r.status === 'rejected');
  assert.equal(
    failed.length,
    0,
    `every client succeeded after retrying: ${failed.map((f) => String((f as PromiseRejectedResult).reason)).join('; ')}`,
  );
  assert.ok(retries > 0, 'the kill cut off pushes in flight (else this test proved nothing)');
  const survivor = nodes[2]!;
  for (const [i, record] of records.entries()) {
    for (const [digest, bytes] of record.blobs) {
      const got = await dataPlane(survivor, DEFAULT_REGISTRY, 'GET', `/v2/crash/c${i}/blobs/${digest}`);
      assert.equal(got.status, 200, `acknowledged blob ${digest} of client ${i}`);
      assert.ok(got.body.equals(bytes));
    }
    assert.ok(record.manifest, `client ${i} pushed its manifest`);
    const got = await dataPlane(
      survivor,
      DEFAULT_REGISTRY,
      'GET',
      `/v2/crash/c${i}/manifests/${record.manifest.tag}`,
      {
        headers: { Accept: MT.ociManifest },
      },
    );
    assert.equal(got.status, 200);
    assert.equal(got.headers['docker-content-digest'], record.manifest.digest);
    assert.ok(got.body.equals(record.manifest.bytes));
  }
  // The killed node comes back on the same database and serves what the others stored meanwhile.
  const restarted = await cluster.startNode(victim);
  const again = await send(restarted.url, `/v2/crash/c0/manifests/v1`, {
    headers: { Accept: MT.ociManifest },
  });
  assert.equal(again.status, 200);
});
