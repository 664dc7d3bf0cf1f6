import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  EMPTY_DIGEST,
  EMPTY_JSON,
  MT,
  digestOf,
  descriptorOf,
  expectError,
  imageManifest,
  indexManifest,
  pushBlob,
  pushImage,
  pushManifest,
  putManifest,
  randomBlob,
  rawRequest,
  v2fetch,
} from '../helpers/oci.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let small: TestBerth;
before(async () => {
  berth = await startTestBerth();
  small = await startTestBerth({ registry: { maxManifestBytes: 2048 } });
});
after(async () => {
  await berth.stop();
  await small.stop();
});

async function getManifest(repo: string, reference: string): Promise<{ res: Response; body: Buffer }> {
  const res = await v2fetch(`${berth.url}/v2/${repo}/manifests/${reference}`);
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

/** A config and layer pushed to `repo`, ready to reference. */
async function blobsIn(repo: string) {
  const configBytes = Buffer.from(JSON.stringify({ os: 'linux', n: randomBlob(4).toString('hex') }));
  const layerBytes = randomBlob(128);
  await pushBlob(berth.url, repo, configBytes);
  await pushBlob(berth.url, repo, layerBytes);
  return { config: descriptorOf(MT.ociConfig, configBytes), layer: descriptorOf(MT.ociLayer, layerBytes) };
}

test('an OCI image manifest: 201 with Location and digest, then served by tag and digest', async () => {
  const { config, layer } = await blobsIn('man/oci');
  const bytes = Buffer.from(JSON.stringify(imageManifest(config, [layer])));
  const res = await putManifest(berth.url, 'man/oci', 'v1', bytes);
  assert.equal(res.status, 201, await res.text());
  const digest = digestOf(bytes);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.equal(res.headers.get('location'), `/v2/man/oci/manifests/${digest}`);
  assert.equal(res.headers.get('oci-subject'), null);
  for (const reference of ['v1', digest]) {
    const { res: got, body } = await getManifest('man/oci', reference);
    assert.equal(got.headers.get('content-type'), MT.ociManifest);
    assert.deepEqual(body, bytes);
  }
});

test('an image manifest with no layers is accepted', async () => {
  const { config } = await blobsIn('man/no-layers');
  const pushed = await pushManifest(berth.url, 'man/no-layers', 'empty', imageManifest(config, []));
  const { res, body } = await getManifest('man/no-layers', 'empty');
  assert.equal(res.status, 200);
  assert.deepEqual(body, pushed.bytes);
});

test('an OCI index whose children exist is accepted; a missing child is 404 MANIFEST_BLOB_UNKNOWN', async () => {
  const amd = await pushImage(berth.url, 'man/index');
  const arm = await pushImage(berth.url, 'man/index');
  const children = [
    { ...amd.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
    { ...arm.descriptor, platform: { architecture: 'arm64', os: 'linux' } },
  ];
  const index = await pushManifest(berth.url, 'man/index', 'multi', indexManifest(children), MT.ociIndex);
  const { res, body } = await getManifest('man/index', 'multi');
  assert.equal(res.headers.get('content-type'), MT.ociIndex);
  assert.deepEqual(body, index.bytes);

  const ghost = { mediaType: MT.ociManifest, digest: digestOf(randomBlob()), size: 500 };
  const missing = await putManifest(
    berth.url,
    'man/index',
    'broken',
    indexManifest([amd.descriptor, ghost]),
    MT.ociIndex,
  );
  const error = await expectError(missing, 404, 'MANIFEST_BLOB_UNKNOWN');
  assert.deepEqual(error.errors[0]!.detail, { digest: ghost.digest });
  assert.equal((await getManifest('man/index', 'broken')).res.status, 404);
  // A child that lives in another repository does not count.
  const elsewhere = await pushImage(berth.url, 'man/index-other');
  const foreign = await putManifest(
    berth.url,
    'man/index',
    'x',
    indexManifest([elsewhere.descriptor]),
    MT.ociIndex,
  );
  await expectError(foreign, 404, 'MANIFEST_BLOB_UNKNOWN');
});

test('Docker v2 schema 2 manifests and manifest lists are stored and served with their type', async () => {
  const image = await pushImage(berth.url, 'man/docker', 'v2', { mediaType: MT.dockerManifest });
  const { res, body } = await getManifest('man/docker', 'v2');
  assert.equal(res.headers.get('content-type'), MT.dockerManifest);
  assert.deepEqual(body, image.bytes);

  const list = indexManifest(
    [{ ...image.descriptor, platform: { architecture: 'amd64', os: 'linux' } }],
    MT.dockerList,
  );
  const pushed = await pushManifest(berth.url, 'man/docker', 'list', list, MT.dockerList);
  const got = await getManifest('man/docker', 'list');
  assert.equal(got.res.headers.get('content-type'), MT.dockerList);
  assert.deepEqual(got.body, pushed.bytes);
  const docker = await v2fetch(`${berth.url}/v2/man/docker/manifests/list`, {
    headers: { Accept: `${MT.dockerManifest}, ${MT.dockerList}` },
  });
  assert.equal(docker.status, 200);
});

test('an artifact manifest with artifactType and the empty config is accepted', async () => {
  const subject = await pushImage(berth.url, 'man/artifact', 'base');
  await pushBlob(berth.url, 'man/artifact', EMPTY_JSON);
  assert.equal(digestOf(EMPTY_JSON), EMPTY_DIGEST);
  const sbom = Buffer.from('{"sbom":true}');
  await pushBlob(berth.url, 'man/artifact', sbom);
  const manifest = imageManifest(
    { mediaType: MT.ociEmpty, digest: EMPTY_DIGEST, size: 2 },
    [descriptorOf('application/spdx+json', sbom)],
    { artifactType: 'application/spdx+json', subject: subject.descriptor },
  );
  const res = await putManifest(berth.url, 'man/artifact', digestOf(JSON.stringify(manifest)), manifest);
  assert.equal(res.status, 201, await res.text());
  assert.equal(res.headers.get('oci-subject'), subject.digest);

  // The empty config without artifactType is refused (image-spec: artifactType MUST be set then).
  const noType = imageManifest({ mediaType: MT.ociEmpty, digest: EMPTY_DIGEST, size: 2 }, [
    descriptorOf('application/spdx+json', sbom),
  ]);
  await expectError(await putManifest(berth.url, 'man/artifact', 'no-type', noType), 400, 'MANIFEST_INVALID');
});

test('a missing config or layer blob is 404 MANIFEST_BLOB_UNKNOWN naming the digest', async () => {
  const { config, layer } = await blobsIn('man/missing');
  const ghost = descriptorOf(MT.ociLayer, randomBlob(10));
  const noLayer = await putManifest(berth.url, 'man/missing', 'a', imageManifest(config, [layer, ghost]));
  const body = await expectError(noLayer, 404, 'MANIFEST_BLOB_UNKNOWN');
  assert.deepEqual(body.errors[0]!.detail, { digest: ghost.digest });
  const ghostConfig = descriptorOf(MT.ociConfig, randomBlob(10));
  await expectError(
    await putManifest(berth.url, 'man/missing', 'b', imageManifest(ghostConfig, [layer])),
    404,
    'MANIFEST_BLOB_UNKNOWN',
  );
  // A blob pushed to another repository is not enough.
  const other = await blobsIn('man/missing-other');
  await expectError(
    await putManifest(berth.url, 'man/missing', 'c', imageManifest(other.config, [layer])),
    404,
    'MANIFEST_BLOB_UNKNOWN',
  );
  assert.equal((await getManifest('man/missing', 'a')).res.status, 404);
});

test('invalid manifests are 400 MANIFEST_INVALID', async () => {
  const { config, layer } = await blobsIn('man/invalid');
  const good = imageManifest(config, [layer]);
  const cases: [string, string | object, string | undefined][] = [
    ['not JSON', '{"schemaVersion":2,', MT.ociManifest],
    ['a JSON array', '[]', MT.ociManifest],
    ['schemaVersion 1', { ...good, schemaVersion: 1 }, MT.ociManifest],
    ['schemaVersion missing', { ...good, schemaVersion: undefined }, MT.ociManifest],
    ['schemaVersion "2"', { ...good, schemaVersion: '2' }, MT.ociManifest],
    [
      'config without digest',
      { ...good, config: { mediaType: MT.ociConfig, size: config.size } },
      MT.ociManifest,
    ],
    ['layer with a bad digest', { ...good, layers: [{ ...layer, digest: 'sha256:xyz' }] }, MT.ociManifest],
    ['layer with a negative size', { ...good, layers: [{ ...layer, size: -1 }] }, MT.ociManifest],
    ['layer with a fractional size', { ...good, layers: [{ ...layer, size: 1.5 }] }, MT.ociManifest],
    ['layers not an array', { ...good, layers: {} }, MT.ociManifest],
    [
      'layer media type not a media type',
      { ...good, layers: [{ ...layer, mediaType: 'nonsense' }] },
      MT.ociManifest,
    ],
    [
      'a size that disagrees with the blob',
      { ...good, layers: [{ ...layer, size: layer.size + 1 }] },
      MT.ociManifest,
    ],
    ['Content-Type an index, mediaType a manifest', good, MT.ociIndex],
    ['Content-Type Docker, mediaType OCI', good, MT.dockerManifest],
    [
      'a schema 1 manifest',
      { schemaVersion: 1, name: 'man/invalid', tag: 'v1', fsLayers: [] },
      MT.dockerSchema1,
    ],
    [
      'a schema 1 manifest by mediaType',
      { ...good, mediaType: 'application/vnd.docker.distribution.manifest.v1+json' },
      undefined,
    ],
    ['an unknown mediaType', { ...good, mediaType: 'application/x-nope' }, undefined],
    ['annotations that are not strings', { ...good, annotations: { a: 1 } }, MT.ociManifest],
    ['an index with layers', { ...indexManifest([]), layers: [] }, MT.ociIndex],
    ['a subject that is no descriptor', { ...good, subject: 'sha256:abc' }, MT.ociManifest],
  ];
  for (const [name, manifest, type] of cases) {
    await expectError(
      await putManifest(berth.url, 'man/invalid', 'bad', manifest, type),
      400,
      'MANIFEST_INVALID',
    ).catch((error: Error) => assert.fail(`${name}: ${error.message}`));
  }
  assert.equal((await getManifest('man/invalid', 'bad')).res.status, 404);
  // The good one works, with or without a Content-Type naming it.
  assert.equal((await putManifest(berth.url, 'man/invalid', 'good', good)).status, 201);
  assert.equal((await putManifest(berth.url, 'man/invalid', 'good2', good, undefined)).status, 201);
});

test('push by digest: the right digest is accepted, a wrong one is 400 DIGEST_INVALID', async () => {
  const { config, layer } = await blobsIn('man/by-digest');
  const bytes = Buffer.from(JSON.stringify(imageManifest(config, [layer])));
  const wrong = digestOf(randomBlob());
  await expectError(await putManifest(berth.url, 'man/by-digest', wrong, bytes), 400, 'DIGEST_INVALID');
  assert.equal((await getManifest('man/by-digest', wrong)).res.status, 404);
  assert.equal((await getManifest('man/by-digest', digestOf(bytes))).res.status, 404);
  const ok = await putManifest(berth.url, 'man/by-digest', digestOf(bytes), bytes);
  assert.equal(ok.status, 201);
  // A sha512 reference is checked with sha512.
  const sha512 = digestOf(bytes, 'sha512');
  const res = await putManifest(berth.url, 'man/by-digest', sha512, bytes);
  assert.equal(res.status, 201, await res.text());
  assert.equal(res.headers.get('docker-content-digest'), sha512);
  assert.deepEqual((await getManifest('man/by-digest', sha512)).body, bytes);
});

test('a manifest over the size limit is 413, whether or not Content-Length says so', async () => {
  const image = await pushImage(small.url, 'man/limit');
  const big = imageManifest(image.config, image.layers, { annotations: { pad: 'x'.repeat(3000) } });
  const res = await putManifest(small.url, 'man/limit', 'big', big);
  assert.equal(res.status, 413);
  assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code, 'SIZE_INVALID');
  const chunked = await rawRequest(small.url, {
    method: 'PUT',
    path: '/v2/man/limit/manifests/big',
    headers: { 'Content-Type': MT.ociManifest },
    body: [Buffer.from(JSON.stringify(big).slice(0, 1500)), Buffer.from(JSON.stringify(big).slice(1500))],
    chunked: true,
  });
  assert.equal(chunked.status, 413);
  assert.equal((await v2fetch(`${small.url}/v2/man/limit/manifests/big`)).status, 404);
  // Exactly at the limit is fine; one byte more is not.
  const sized = (size: number) => {
    const base = JSON.stringify(imageManifest(image.config, image.layers, { annotations: { pad: '' } }));
    return Buffer.from(base.replace('"pad":""', `"pad":"${'x'.repeat(size - base.length)}"`));
  };
  assert.equal(sized(2048).length, 2048);
  assert.equal((await putManifest(small.url, 'man/limit', 'fits', sized(2048))).status, 201);
  assert.equal((await putManifest(small.url, 'man/limit', 'over', sized(2049))).status, 413);
});

test('stored bytes are exactly what was sent, odd whitespace and key order included', async () => {
  const { config, layer } = await blobsIn('man/bytes');
  const text =
    '\n  {  "layers" : [ ' +
    JSON.stringify(layer, null, 7) +
    ' ],\t"schemaVersion":2 ,\r\n"config":' +
    JSON.stringify(config) +
    ', "mediaType": "' +
    MT.ociManifest +
    '", "annotations": {"é": "ü\\u00e9"}}\n\n';
  const bytes = Buffer.from(text, 'utf8');
  const pushed = await pushManifest(berth.url, 'man/bytes', 'odd', bytes);
  const { res, body } = await getManifest('man/bytes', 'odd');
  assert.equal(res.headers.get('content-length'), String(bytes.length));
  assert.deepEqual(body, bytes);
  assert.equal(digestOf(body), pushed.digest);
});

test('OCI-Subject is returned when the manifest has a subject', async () => {
  const subject = await pushImage(berth.url, 'man/subject', 'v1');
  const { config, layer } = await blobsIn('man/subject');
  const res = await putManifest(
    berth.url,
    'man/subject',
    'sig',
    imageManifest(config, [layer], { subject: subject.descriptor }),
  );
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('oci-subject'), subject.digest);
  // The subject need not exist in the registry.
  const absent = { mediaType: MT.ociManifest, digest: digestOf(randomBlob()), size: 123 };
  const dangling = await putManifest(
    berth.url,
    'man/subject',
    'sig2',
    imageManifest(config, [layer], { subject: absent }),
  );
  assert.equal(dangling.status, 201);
  assert.equal(dangling.headers.get('oci-subject'), absent.digest);
});

test('a tag moves when a different manifest is pushed to it; the old one stays by digest', async () => {
  const first = await pushImage(berth.url, 'man/move', 'latest');
  const second = await pushImage(berth.url, 'man/move', 'latest');
  assert.notEqual(first.digest, second.digest);
  const { res, body } = await getManifest('man/move', 'latest');
  assert.equal(res.headers.get('docker-content-digest'), second.digest);
  assert.deepEqual(body, second.bytes);
  assert.deepEqual((await getManifest('man/move', first.digest)).body, first.bytes);
  // Re-pushing identical bytes under another tag is idempotent and adds the tag.
  await pushManifest(berth.url, 'man/move', 'stable', first.bytes);
  assert.equal(
    (await getManifest('man/move', 'stable')).res.headers.get('docker-content-digest'),
    first.digest,
  );
  const tags = (await (await v2fetch(`${berth.url}/v2/man/move/tags/list`)).json()) as { tags: string[] };
  assert.deepEqual(tags.tags, ['latest', 'stable']);
});
