// The management API's manifest view (what the portal shows: size, layers, an index's platforms,
// referrers) and manifest delete, which obey the registry's network rules like the other views.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiFor, createRegistry, expectApiError, uniqueName, type Api } from '../helpers/management.js';
import { indexManifest, MT, pushArtifact, pushImage, pushManifest } from '../helpers/oci.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let api: Api;
before(async () => {
  berth = await startTestBerth();
  api = apiFor(berth);
});
after(async () => {
  await berth.stop();
});

const manifestPath = (repo: string, reference: string) =>
  `/api/registries/default/repositories/${encodeURIComponent(repo)}/manifests/${encodeURIComponent(reference)}`;

test('an image by tag: its digest, media type, sizes and layers, and the artifacts that refer to it', async () => {
  const repo = `portal/${uniqueName('img')}`;
  const image = await pushImage(berth.url, repo, 'v1', { layers: 2 });
  const signature = await pushArtifact(
    berth.url,
    repo,
    image.descriptor,
    'application/vnd.example.signature',
  );
  const res = await api('GET', manifestPath(repo, 'v1'));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.digest, image.digest);
  assert.equal(res.body.mediaType, MT.ociManifest);
  assert.equal(res.body.size, image.bytes.length);
  assert.equal(res.body.layers.length, 2);
  const layerBytes = image.layers.reduce((sum, l) => sum + l.size, 0);
  assert.equal(res.body.totalSize, image.bytes.length + image.config.size + layerBytes);
  assert.deepEqual(
    res.body.referrers.map((r: { digest: string; artifactType: string }) => [r.digest, r.artifactType]),
    [[signature.digest, 'application/vnd.example.signature']],
  );
  // The same manifest by digest.
  assert.equal((await api('GET', manifestPath(repo, image.digest))).body.digest, image.digest);
});

test("an index lists its children's platforms", async () => {
  const repo = `portal/${uniqueName('idx')}`;
  const amd = await pushImage(berth.url, repo);
  const arm = await pushImage(berth.url, repo);
  const index = await pushManifest(
    berth.url,
    repo,
    'multi',
    indexManifest([
      { ...amd.descriptor, platform: { os: 'linux', architecture: 'amd64' } },
      { ...arm.descriptor, platform: { os: 'linux', architecture: 'arm64' } },
    ]),
    MT.ociIndex,
  );
  const res = await api('GET', manifestPath(repo, 'multi'));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.digest, index.digest);
  assert.deepEqual(
    res.body.manifests.map((m: { digest: string; platform: object }) => [m.digest, m.platform]),
    [
      [amd.digest, { os: 'linux', architecture: 'amd64' }],
      [arm.digest, { os: 'linux', architecture: 'arm64' }],
    ],
  );
  assert.equal(res.body.layers, undefined);
});

test('delete by digest removes the manifest and its tags; a tag, a bad reference or an unknown one are refused', async () => {
  const repo = `portal/${uniqueName('del')}`;
  const image = await pushImage(berth.url, repo, 'v1');
  await pushImage(berth.url, repo, 'keep');
  expectApiError(await api('DELETE', manifestPath(repo, 'v1')), 400, 'InvalidParameter', 'by its digest');
  expectApiError(await api('GET', manifestPath(repo, 'sha256:nothex')), 400, 'InvalidParameter');
  expectApiError(await api('GET', manifestPath(repo, 'missing')), 404, 'ResourceNotFound', "'missing'");
  expectApiError(await api('GET', manifestPath('portal/none', 'v1')), 404, 'ResourceNotFound', 'Repository');
  assert.equal((await api('DELETE', manifestPath(repo, image.digest))).status, 204);
  expectApiError(await api('GET', manifestPath(repo, image.digest)), 404, 'ResourceNotFound');
  const tags = await api('GET', `/api/registries/default/repositories/${encodeURIComponent(repo)}/tags`);
  assert.deepEqual(
    tags.body.value.map((t: { name: string }) => t.name),
    ['keep'],
  );
});

test("the manifest view obeys the registry's network rules for the caller's address", async () => {
  const name = uniqueName('mnet');
  await createRegistry(api, name, 'Premium', {
    networkRuleSet: { defaultAction: 'Deny', ipRules: [{ action: 'Allow', value: '10.0.0.0/8' }] },
  });
  const res = await api('GET', `/api/registries/${name}/repositories/a/manifests/v1`);
  expectApiError(res, 403, 'NetworkAccessDenied', "'127.0.0.1'");
});
