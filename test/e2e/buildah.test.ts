import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  registryHost,
  signInContainers,
  requireTool,
  runOk,
  testTempDir,
  writeContainersConfig,
  httpGet,
} from '../helpers/e2e.js';
import { OciMediaType, readLayerFiles } from '../helpers/oci-layout.js';
import { startTestBerth } from '../helpers/server.js';

test('buildah builds an image from scratch and pushes it; skopeo reads back its manifest and config', async (t) => {
  const buildah = requireTool(t, 'buildah');
  const skopeo = buildah && requireTool(t, 'skopeo');
  if (!buildah || !skopeo) return;
  const dir = testTempDir(t);
  const containers = writeContainersConfig(dir);
  const berth = await startTestBerth();
  t.after(() => berth.stop());
  const host = registryHost(berth.url);
  signInContainers(containers, host);
  const env = containers.env;
  const bd = (args: string[]) =>
    runOk(buildah, [...containers.storageFlags, ...args], { env, timeoutMs: 180_000 });
  const content = 'built by buildah for the berth e2e test\n';
  writeFileSync(join(dir, 'greeting.txt'), content);

  const container = (await bd(['from', '--signature-policy', containers.policy, 'scratch'])).stdout.trim();
  assert.match(container, /^[\w.-]+$/);
  // No `buildah rm`: the working container lives in the temp dir's storage, which goes with it.
  await bd(['copy', container, join(dir, 'greeting.txt'), '/greeting.txt']);
  await bd(['config', '--cmd', '/greeting.txt', '--label', 'org.example.e2e=buildah', container]);
  await bd(['commit', '--format', 'oci', container, 'localhost/e2e-built:latest']);
  await bd([
    'push',
    '--signature-policy',
    containers.policy,
    '--tls-verify=false',
    'localhost/e2e-built:latest',
    `docker://${host}/e2e/built:v1`,
  ]);

  const sk = (args: string[]) => runOk(skopeo, args, { env });
  const raw = JSON.parse(
    (await sk(['inspect', '--raw', '--tls-verify=false', `docker://${host}/e2e/built:v1`])).stdout,
  ) as {
    mediaType?: string;
    config: { digest: string; mediaType: string };
    layers: { digest: string; mediaType: string }[];
  };
  assert.equal(raw.config.mediaType, 'application/vnd.oci.image.config.v1+json');
  assert.equal(raw.layers.length, 1);
  const config = JSON.parse(
    (await sk(['inspect', '--config', '--tls-verify=false', `docker://${host}/e2e/built:v1`])).stdout,
  ) as { config: { Cmd?: string[]; Labels?: Record<string, string> }; rootfs: { diff_ids: string[] } };
  assert.deepEqual(config.config.Cmd, ['/greeting.txt']);
  assert.equal(config.config.Labels?.['org.example.e2e'], 'buildah');
  assert.equal(config.rootfs.diff_ids.length, 1);

  // The registry serves the manifest under the type it was pushed with, and the layer holds the file.
  const res = await httpGet(`${berth.url}/v2/e2e/built/manifests/v1`, {
    headers: { Accept: OciMediaType.Manifest },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], OciMediaType.Manifest);
  const layer = await httpGet(`${berth.url}/v2/e2e/built/blobs/${raw.layers[0]!.digest}`);
  assert.equal(layer.status, 200);
  const files = readLayerFiles(layer.body);
  assert.equal(files.get('greeting.txt')?.toString('utf8'), content);
});
