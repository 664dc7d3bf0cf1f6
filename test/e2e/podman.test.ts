import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  registryHost,
  signInContainers,
  requireTool,
  pushLayoutArgs,
  runOk,
  testTempDir,
  writeContainersConfig,
  httpGet,
} from '../helpers/e2e.js';
import { OciMediaType, readLayerFiles, writeMultiArchLayout } from '../helpers/oci-layout.js';
import { startTestBerth } from '../helpers/server.js';

const MANIFEST_ACCEPT = [
  OciMediaType.Manifest,
  OciMediaType.Index,
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

test('podman pulls one platform of a skopeo-pushed index, then tags and pushes it under a new name', async (t) => {
  const skopeo = requireTool(t, 'skopeo');
  const podman = skopeo && requireTool(t, 'podman');
  if (!skopeo || !podman) return;
  const dir = testTempDir(t);
  const containers = writeContainersConfig(dir);
  const berth = await startTestBerth();
  t.after(() => berth.stop());
  const host = registryHost(berth.url);
  signInContainers(containers, host);
  const layout = writeMultiArchLayout(join(dir, 'layout'));
  const amd64 = layout.platforms.find((p) => p.architecture === 'amd64')!;
  const env = containers.env;
  const pm = (args: string[]) =>
    runOk(podman, [...containers.storageFlags, ...args], { env, timeoutMs: 180_000 });

  await runOk(skopeo, pushLayoutArgs(containers, layout.dir, `docker://${host}/e2e/multi:v1`), { env });

  await pm([
    'pull',
    '--signature-policy',
    containers.policy,
    '--tls-verify=false',
    '--arch',
    'amd64',
    `${host}/e2e/multi:v1`,
  ]);
  const inspected = await pm(['image', 'inspect', `${host}/e2e/multi:v1`]);
  const [image] = JSON.parse(inspected.stdout) as {
    Architecture: string;
    Os: string;
    RootFS: { Layers: string[] };
  }[];
  assert.equal(image?.Architecture, 'amd64');
  assert.equal(image?.Os, 'linux');
  assert.deepEqual(image?.RootFS.Layers, [amd64.diffId]);

  await pm(['tag', `${host}/e2e/multi:v1`, `${host}/e2e/pushed:v2`]);
  await pm(['push', '--signature-policy', containers.policy, '--tls-verify=false', `${host}/e2e/pushed:v2`]);

  // Verify through the registry's own API: the tag exists and everything it references can be fetched.
  const tags = await httpGet(`${berth.url}/v2/e2e/pushed/tags/list`);
  assert.equal(tags.status, 200);
  assert.deepEqual(tags.json<{ tags: string[] }>().tags, ['v2']);
  const res = await httpGet(`${berth.url}/v2/e2e/pushed/manifests/v2`, {
    headers: { Accept: MANIFEST_ACCEPT },
  });
  assert.equal(res.status, 200);
  const manifest = res.json<{
    config: { digest: string };
    layers: { digest: string; mediaType: string }[];
  }>();
  assert.equal(manifest.layers.length, 1);
  const configBlob = await httpGet(`${berth.url}/v2/e2e/pushed/blobs/${manifest.config.digest}`);
  assert.equal(configBlob.status, 200);
  const config = configBlob.json<{ architecture: string; rootfs: { diff_ids: string[] } }>();
  assert.equal(config.architecture, 'amd64');
  assert.deepEqual(config.rootfs.diff_ids, [amd64.diffId]);
  const layer = await httpGet(`${berth.url}/v2/e2e/pushed/blobs/${manifest.layers[0]!.digest}`);
  assert.equal(layer.status, 200);
  const files = readLayerFiles(layer.body);
  assert.equal(files.get(amd64.file.path)?.toString('utf8'), amd64.file.content);
});
