import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  MT,
  digestOf,
  expectError,
  indexManifest,
  pushArtifact,
  pushImage,
  pushManifest,
  randomBlob,
  v2fetch,
} from '../helpers/oci.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
before(async () => {
  berth = await startTestBerth();
});
after(async () => {
  await berth.stop();
});

interface ReferrersIndex {
  schemaVersion: number;
  mediaType: string;
  manifests: {
    mediaType: string;
    digest: string;
    size: number;
    artifactType?: string;
    annotations?: object;
  }[];
}

async function referrers(
  repo: string,
  digest: string,
  query = '',
): Promise<{ res: Response; index: ReferrersIndex }> {
  const res = await v2fetch(`${berth.url}/v2/${repo}/referrers/${digest}${query}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), MT.ociIndex);
  return { res, index: (await res.json()) as ReferrersIndex };
}

test('referrers lists every manifest whose subject is the digest, with artifactType and annotations', async () => {
  const subject = await pushImage(berth.url, 'disc/ref', 'v1');
  const sig = await pushArtifact(berth.url, 'disc/ref', subject.descriptor, 'application/vnd.example.sig', {
    'org.example.kind': 'signature',
  });
  const sbom = await pushArtifact(berth.url, 'disc/ref', subject.descriptor, 'application/spdx+json');
  // An image manifest with a subject but no artifactType is listed under its config media type.
  const plain = await pushImage(berth.url, 'disc/ref', undefined, { subject: subject.descriptor });
  // Unrelated manifests are not listed.
  await pushArtifact(berth.url, 'disc/ref', plain.descriptor, 'application/vnd.example.sig');

  const { res, index } = await referrers('disc/ref', subject.digest);
  assert.equal(res.headers.get('oci-filters-applied'), null);
  assert.equal(index.schemaVersion, 2);
  assert.equal(index.mediaType, MT.ociIndex);
  const byDigest = new Map(index.manifests.map((m) => [m.digest, m]));
  assert.deepEqual([...byDigest.keys()].sort(), [sig.digest, sbom.digest, plain.digest].sort());
  assert.deepEqual(byDigest.get(sig.digest), {
    mediaType: MT.ociManifest,
    digest: sig.digest,
    size: sig.bytes.length,
    artifactType: 'application/vnd.example.sig',
    annotations: { 'org.example.kind': 'signature' },
  });
  assert.equal(byDigest.get(sbom.digest)!.artifactType, 'application/spdx+json');
  assert.equal(byDigest.get(plain.digest)!.artifactType, MT.ociConfig);
});

test('referrers ?artifactType= filters and sets OCI-Filters-Applied', async () => {
  const subject = await pushImage(berth.url, 'disc/filter', 'v1');
  const sig = await pushArtifact(berth.url, 'disc/filter', subject.descriptor, 'application/vnd.example.sig');
  await pushArtifact(berth.url, 'disc/filter', subject.descriptor, 'application/spdx+json');
  const query = `?artifactType=${encodeURIComponent('application/vnd.example.sig')}`;
  const { res, index } = await referrers('disc/filter', subject.digest, query);
  assert.equal(res.headers.get('oci-filters-applied'), 'artifactType');
  assert.deepEqual(
    index.manifests.map((m) => m.digest),
    [sig.digest],
  );
  const none = await referrers('disc/filter', subject.digest, '?artifactType=application/x-none');
  assert.deepEqual(none.index.manifests, []);
});

test('referrers of an index subject, and an index as a referrer', async () => {
  const child = await pushImage(berth.url, 'disc/index');
  const index = await pushManifest(
    berth.url,
    'disc/index',
    'multi',
    indexManifest([child.descriptor]),
    MT.ociIndex,
  );
  const referrer = await pushManifest(
    berth.url,
    'disc/index',
    undefined,
    indexManifest([child.descriptor], MT.ociIndex, {
      artifactType: 'application/vnd.example.bundle',
      subject: index.descriptor,
    }),
    MT.ociIndex,
  );
  const { index: listed } = await referrers('disc/index', index.digest);
  assert.deepEqual(listed.manifests, [
    {
      mediaType: MT.ociIndex,
      digest: referrer.digest,
      size: referrer.bytes.length,
      artifactType: 'application/vnd.example.bundle',
    },
  ]);
});

test('referrers of an unknown digest is an empty index; an invalid digest is 400', async () => {
  const { index } = await referrers('disc/none', digestOf(randomBlob()));
  assert.deepEqual(index, { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] });
  await expectError(await v2fetch(`${berth.url}/v2/disc/none/referrers/sha256:abc`), 400, 'DIGEST_INVALID');
  await expectError(await v2fetch(`${berth.url}/v2/disc/none/referrers/latest`), 400, 'DIGEST_INVALID');
});

test('a deleted referrer is no longer listed', async () => {
  const subject = await pushImage(berth.url, 'disc/gone', 'v1');
  const sig = await pushArtifact(berth.url, 'disc/gone', subject.descriptor, 'application/vnd.example.sig');
  assert.equal((await referrers('disc/gone', subject.digest)).index.manifests.length, 1);
  assert.equal(
    (await v2fetch(`${berth.url}/v2/disc/gone/manifests/${sig.digest}`, { method: 'DELETE' })).status,
    202,
  );
  assert.deepEqual((await referrers('disc/gone', subject.digest)).index.manifests, []);
});

async function tagPage(repo: string, query: string): Promise<{ res: Response; tags: string[] }> {
  const res = await v2fetch(`${berth.url}/v2/${repo}/tags/list${query}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await res.json()) as { name: string; tags: string[] };
  assert.equal(body.name, repo);
  return { res, tags: body.tags };
}

test('tags list: lexical order, n and last, Link header on every page but the last', async () => {
  const image = await pushImage(berth.url, 'disc/tags', 'c');
  for (const tag of ['a', 'B', 'b', '1.0', 'a-1', 'a_1'])
    await pushManifest(berth.url, 'disc/tags', tag, image.bytes);
  const all = ['1.0', 'B', 'a', 'a-1', 'a_1', 'b', 'c'];
  const whole = await tagPage('disc/tags', '');
  assert.deepEqual(whole.tags, all);
  assert.equal(whole.res.headers.get('link'), null);

  const first = await tagPage('disc/tags', '?n=2');
  assert.deepEqual(first.tags, ['1.0', 'B']);
  assert.equal(first.res.headers.get('link'), '</v2/disc/tags/tags/list?n=2&last=B>; rel="next"');

  // Follow the Link headers to the end.
  const seen: string[] = [...first.tags];
  let link = first.res.headers.get('link');
  for (let i = 0; link && i < 10; i++) {
    const next = /^<([^>]+)>; rel="next"$/.exec(link)![1]!;
    const res = await v2fetch(`${berth.url}${next}`);
    const body = (await res.json()) as { tags: string[] };
    assert.ok(body.tags.length > 0 && body.tags.length <= 2);
    seen.push(...body.tags);
    link = res.headers.get('link');
  }
  assert.deepEqual(seen, all);

  const last = await tagPage('disc/tags', '?n=2&last=b');
  assert.deepEqual(last.tags, ['c']);
  assert.equal(last.res.headers.get('link'), null);
  const exact = await tagPage('disc/tags', '?n=7');
  assert.deepEqual(exact.tags, all);
  assert.equal(exact.res.headers.get('link'), null);
  assert.deepEqual((await tagPage('disc/tags', '?last=a_1')).tags, ['b', 'c']);
  assert.deepEqual((await tagPage('disc/tags', '?last=zzz')).tags, []);
  const zero = await tagPage('disc/tags', '?n=0');
  assert.deepEqual(zero.tags, []);
  assert.equal(zero.res.headers.get('link'), null);
});

test('tags list: invalid n is 400; an unknown repository is 404 NAME_UNKNOWN', async () => {
  await pushImage(berth.url, 'disc/tags-n', 'v1');
  for (const n of ['-1', 'abc', '1.5', '', '99999999999999999999']) {
    await expectError(
      await v2fetch(`${berth.url}/v2/disc/tags-n/tags/list?n=${n}`),
      400,
      'PAGINATION_NUMBER_INVALID',
    );
  }
  await expectError(await v2fetch(`${berth.url}/v2/disc/no-such-repo/tags/list`), 404, 'NAME_UNKNOWN');
});

test('catalog: lexical order, pagination with Link, registry-wide', async () => {
  const fresh = await startTestBerth();
  try {
    const repos = ['zeta', 'alpha/one', 'alpha', 'alpha/two', 'beta'];
    for (const repo of repos) await pushImage(fresh.url, repo, 'v1');
    const sorted = [...repos].sort();
    const whole = await v2fetch(`${fresh.url}/v2/_catalog`);
    assert.equal(whole.status, 200);
    assert.deepEqual(((await whole.json()) as { repositories: string[] }).repositories, sorted);
    assert.equal(whole.headers.get('link'), null);

    const seen: string[] = [];
    let url: string | undefined = `${fresh.url}/v2/_catalog?n=2`;
    for (let i = 0; url && i < 10; i++) {
      const res: Response = await v2fetch(url);
      assert.equal(res.status, 200);
      const page = ((await res.json()) as { repositories: string[] }).repositories;
      assert.ok(page.length <= 2);
      seen.push(...page);
      const link = res.headers.get('link');
      if (link) {
        const match = /^<(\/v2\/_catalog\?n=2&last=[^>]+)>; rel="next"$/.exec(link);
        assert.ok(match, link);
        url = `${fresh.url}${match[1]}`;
      } else url = undefined;
    }
    assert.deepEqual(seen, sorted);

    const after = await v2fetch(`${fresh.url}/v2/_catalog?n=10&last=alpha/two`);
    assert.deepEqual(((await after.json()) as { repositories: string[] }).repositories, ['beta', 'zeta']);
    const zero = await v2fetch(`${fresh.url}/v2/_catalog?n=0`);
    assert.deepEqual(((await zero.json()) as { repositories: string[] }).repositories, []);
    await expectError(await v2fetch(`${fresh.url}/v2/_catalog?n=x`), 400, 'PAGINATION_NUMBER_INVALID');
  } finally {
    await fresh.stop();
  }
});
