import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  describeFailure,
  registryHost,
  signInContainers,
  requireTool,
  run,
  pushLayoutArgs,
  runOk,
  testTempDir,
  writeContainersConfig,
  httpGet,
} from '../helpers/e2e.js';
import { OciMediaType, layoutBlobs, layoutRef, writeMultiArchLayout } from '../helpers/oci-layout.js';
import { startTestBerth } from '../helpers/server.js';

test('skopeo copies a multi-arch image in and out byte for byte, lists tags and deletes', async (t) => {
  const skopeo = requireTool(t, 'skopeo');
  if (!skopeo) return;
  const dir = testTempDir(t);
  const containers = writeContainersConfig(dir);
  const berth = await startTestBerth();
  t.after(() => berth.stop());
  const layout = writeMultiArchLayout(join(dir, 'in'));
  const repo = `docker://${registryHost(berth.url)}/e2e/multi`;
  signInContainers(containers, registryHost(berth.url));
  const sk = (args: string[]) => runOk(skopeo, args, { env: containers.env });
  const policy = ['--policy', containers.policy];

  // Push the whole index (both platforms) from the layout, under two tags.
  await sk(pushLayoutArgs(containers, layout.dir, `${repo}:v1`));
  await sk(pushLayoutArgs(containers, layout.dir, `${repo}:latest`));

  // The registry answers with exactly the bytes of the index that was pushed.
  const raw = await sk(['inspect', '--raw', '--tls-verify=false', `${repo}:v1`]);
  const pushedIndex = layoutBlobs(layout.dir).get(layout.index.digest)!;
  assert.equal(raw.stdout, pushedIndex.toString('utf8'));
  const parsed = JSON.parse(raw.stdout) as {
    mediaType: string;
    manifests: { platform: { architecture: string } }[];
  };
  assert.equal(parsed.mediaType, OciMediaType.Index);
  assert.deepEqual(
    parsed.manifests.map((m) => m.platform.architecture),
    ['amd64', 'arm64'],
  );
  const res = await httpGet(`${berth.url}/v2/e2e/multi/manifests/v1`, {
    headers: { Accept: OciMediaType.Index },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers['docker-content-digest'], layout.index.digest);

  // Per-platform inspect resolves through the index.
  const arm = await sk(['inspect', '--tls-verify=false', '--override-arch', 'arm64', `${repo}:v1`]);
  const armInfo = JSON.parse(arm.stdout) as { Architecture: string; Digest: string; Layers: string[] };
  const armImage = layout.platforms.find((p) => p.architecture === 'arm64')!;
  assert.equal(armInfo.Architecture, 'arm64');
  // skopeo reports the digest of the reference itself (the index), and the layers of the chosen platform.
  assert.equal(armInfo.Digest, layout.index.digest);
  assert.deepEqual(armInfo.Layers, [armImage.layer.digest]);

  // Pull everything back into a new layout: the index and every blob must be identical.
  const out = join(dir, 'out');
  await sk(['copy', ...policy, '--all', '--src-tls-verify=false', `${repo}:v1`, `oci:${out}:v1`]);
  assert.equal(layoutRef(out, 'v1')?.digest, layout.index.digest);
  const sent = layoutBlobs(layout.dir);
  const received = layoutBlobs(out);
  assert.deepEqual([...received.keys()].sort(), [...sent.keys()].sort());
  for (const [digest, bytes] of sent) {
    assert.ok(received.get(digest)?.equals(bytes), `blob ${digest} differs after the round trip`);
  }

  const tags = await sk(['list-tags', '--tls-verify=false', repo]);
  assert.deepEqual(JSON.parse(tags.stdout), {
    Repository: `${registryHost(berth.url)}/e2e/multi`,
    Tags: ['latest', 'v1'],
  });

  // skopeo deletes by digest, which removes the manifest and every tag pointing at it.
  await sk(['delete', '--tls-verify=false', `${repo}:v1`]);
  const gone = await httpGet(`${berth.url}/v2/e2e/multi/manifests/v1`, {
    headers: { Accept: OciMediaType.Index },
  });
  assert.equal(gone.status, 404);
  assert.equal(gone.json<{ errors: { code: string }[] }>().errors[0]?.code, 'MANIFEST_UNKNOWN');
  const latest = await httpGet(`${berth.url}/v2/e2e/multi/manifests/latest`, { method: 'HEAD' });
  assert.equal(latest.status, 404, 'a tag on the deleted digest must go with it');
  const after = await run(skopeo, ['inspect', '--raw', '--tls-verify=false', `${repo}:v1`], {
    env: containers.env,
  });
  assert.notEqual(after.code, 0, describeFailure(skopeo, ['inspect', `${repo}:v1`], after));
  // The platform manifests were not deleted with the index.
  const amd = layout.platforms.find((p) => p.architecture === 'amd64')!;
  const child = await httpGet(`${berth.url}/v2/e2e/multi/manifests/${amd.manifest.digest}`, {
    method: 'HEAD',
    headers: { Accept: OciMediaType.Manifest },
  });
  assert.equal(child.status, 200);
});
