import { connect } from 'node:net';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  MT,
  assertErrorShape,
  digestOf,
  expectError,
  expectRawError,
  pushImage,
  randomBlob,
  rawRequest,
  startUpload,
  type RawRequest,
  v2fetch,
} from '../helpers/oci.js';
import { prng } from '../helpers/prng.js';
import { ADMIN_AUTH, startTestBerth, type TestBerth } from '../helpers/server.js';

let berth: TestBerth;
let tagged: string;
before(async () => {
  berth = await startTestBerth();
  tagged = (await pushImage(berth.url, 'err/repo', 'v1')).digest;
});
after(async () => {
  await berth.stop();
});

test('unknown endpoints are 404 with an OCI error body', async () => {
  for (const path of [
    '/',
    '/v1/',
    '/v3/',
    '/v2/err/repo',
    '/v2/err/repo/unknown',
    '/v2/err/repo/manifests/',
    '/favicon.ico',
  ]) {
    const res = await rawRequest(berth.url, { path });
    assert.equal(res.status, 404, path);
    assertErrorShape(JSON.parse(res.body.toString()));
  }
});

test('a method an endpoint does not support is 405 UNSUPPORTED', async () => {
  const cases: [string, string][] = [
    ['POST', '/v2/'],
    ['DELETE', '/v2/'],
    ['PUT', '/v2/_catalog'],
    ['POST', '/v2/err/repo/tags/list'],
    ['POST', '/v2/err/repo/manifests/v1'],
    ['PATCH', '/v2/err/repo/manifests/v1'],
    ['PUT', `/v2/err/repo/blobs/${tagged}`],
    ['POST', `/v2/err/repo/blobs/${tagged}`],
    ['GET', '/v2/err/repo/blobs/uploads/'],
    ['PUT', '/v2/err/repo/blobs/uploads/'],
    ['POST', `/v2/err/repo/referrers/${tagged}`],
  ];
  for (const [method, path] of cases) {
    const res = await rawRequest(berth.url, { method, path });
    expectRawError(res, 405, 'UNSUPPORTED');
  }
  // And an upload URL does not accept POST.
  const upload = new URL(await startUpload(berth.url, 'err/repo'));
  expectRawError(await rawRequest(berth.url, { method: 'POST', path: upload.pathname }), 405, 'UNSUPPORTED');
});

test('invalid repository names are 400 NAME_INVALID on every endpoint', async () => {
  const names = [
    'Upper/case',
    'a//b',
    'trailing-',
    '-leading',
    'a/.b',
    'a___b',
    'a/b/',
    `${'a'.repeat(256)}`,
    `${'a/'.repeat(127)}ab`,
    'sp ace',
    'ünï',
  ];
  const digest = digestOf(randomBlob());
  for (const name of names) {
    const encoded = name
      .split('/')
      .map((part) => encodeURIComponent(part))
      .join('/');
    for (const [method, suffix] of [
      ['GET', '/tags/list'],
      ['GET', '/manifests/v1'],
      ['PUT', '/manifests/v1'],
      ['HEAD', `/blobs/${digest}`],
      ['POST', '/blobs/uploads/'],
      ['GET', `/referrers/${digest}`],
    ] as const) {
      const res = await rawRequest(berth.url, { method, path: `/v2/${encoded}${suffix}` });
      if (method === 'HEAD') assert.equal(res.status, 400, `${method} ${name}${suffix}`);
      else expectRawError(res, 400, 'NAME_INVALID');
    }
  }
  // 255 characters is still fine.
  const longest = `${'a'.repeat(250)}/bcde`;
  assert.equal(longest.length, 255);
  await expectError(await v2fetch(`${berth.url}/v2/${longest}/tags/list`), 404, 'NAME_UNKNOWN');
});

test('invalid tags are 400 TAG_INVALID on PUT and 404 MANIFEST_UNKNOWN on GET; 128 characters is the longest valid tag', async () => {
  for (const tag of ['-x', '.x', 'x'.repeat(129), 'a+b', 'ä']) {
    // The conformance suite expects a pull by such a reference to find nothing.
    await expectError(
      await v2fetch(`${berth.url}/v2/err/repo/manifests/${encodeURIComponent(tag)}`),
      404,
      'MANIFEST_UNKNOWN',
    );
    await expectError(
      await v2fetch(`${berth.url}/v2/err/repo/manifests/${encodeURIComponent(tag)}`, {
        method: 'PUT',
        headers: { 'Content-Type': MT.ociManifest },
        body: '{}',
      }),
      400,
      'TAG_INVALID',
    );
  }
  const longest = `_${'x'.repeat(127)}`;
  const image = await pushImage(berth.url, 'err/repo', longest);
  const res = await v2fetch(`${berth.url}/v2/err/repo/manifests/${longest}`);
  assert.equal(res.headers.get('docker-content-digest'), image.digest);
});

test('invalid digests are 400 DIGEST_INVALID wherever a digest is expected', async () => {
  const hex = tagged.slice('sha256:'.length);
  const bad = [
    'sha256:abc',
    `md5:${'a'.repeat(32)}`,
    `sha256:${hex.toUpperCase()}`,
    `sha256:${hex}0`,
    `sha512:${hex}`,
    `SHA256:${hex}`,
    `sha256:${'g'.repeat(64)}`,
    'sha256:',
    ':abc',
  ];
  for (const digest of bad) {
    const d = encodeURIComponent(digest);
    await expectError(await v2fetch(`${berth.url}/v2/err/repo/blobs/${d}`), 400, 'DIGEST_INVALID');
    await expectError(await v2fetch(`${berth.url}/v2/err/repo/manifests/${d}`), 400, 'DIGEST_INVALID');
    await expectError(await v2fetch(`${berth.url}/v2/err/repo/referrers/${d}`), 400, 'DIGEST_INVALID');
    await expectError(
      await v2fetch(`${berth.url}/v2/err/repo/blobs/uploads/?digest=${d}`, { method: 'POST', body: 'x' }),
      400,
      'DIGEST_INVALID',
    );
    const upload = await startUpload(berth.url, 'err/repo');
    await expectError(
      await v2fetch(`${upload}?digest=${d}`, { method: 'PUT', body: 'x' }),
      400,
      'DIGEST_INVALID',
    );
  }
});

test('no garbage path, header or body makes the server answer 5xx', async () => {
  const upload = new URL(await startUpload(berth.url, 'err/repo')).pathname;
  const safe = await pushImage(berth.url, 'err/untouched', 'v1');
  const random = prng(Number(process.env.BERTH_FUZZ_SEED ?? 0xbe27));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const names = [
    'err/repo',
    'err',
    'A',
    'a//b',
    '_catalog',
    'x'.repeat(300),
    '%00',
    '%2e%2e',
    'a/%2F/b',
    '%C3%BC',
    '',
  ];
  const endings = [
    '',
    '/',
    '/tags/list',
    '/tags/list?n=-1',
    '/tags/list?n=1e9&last=%ff',
    '/tags/list?n=99999999999999999999',
    '/manifests/v1',
    `/manifests/${tagged}`,
    '/manifests/%25',
    '/manifests/sha256:%00',
    `/blobs/${tagged}`,
    '/blobs/sha256:zz',
    '/blobs/uploads/',
    '/blobs/uploads/?digest=sha256:abc',
    `/blobs/uploads/?mount=${tagged}&from=%%%`,
    `/blobs/uploads/?mount=${tagged}&from=err/repo&digest=x`,
    '/blobs/uploads/00000000-0000-0000-0000-000000000000',
    '/blobs/uploads/../../x',
    '/referrers/sha256:abc?artifactType=%',
    '/tags/list?last=%',
    `/referrers/${tagged}?artifactType=${'a'.repeat(5000)}`,
  ];
  const headerSets: Record<string, string>[] = [
    {},
    { Range: 'bytes=999999999999999-' },
    { Range: 'bytes=-0' },
    { Range: 'bytes=0-0,5-9' },
    { Range: 'items=0-1' },
    { 'Content-Range': '0-999999999999999' },
    { 'Content-Range': 'bytes */*' },
    { 'Content-Range': '5-1' },
    { Accept: ',,;;q=,*/*;;' },
    { Accept: MT.dockerSchema1 },
    { 'Content-Type': ';;;' },
    { 'Content-Type': `${MT.ociIndex}; charset=utf-8` },
    { 'Content-Type': 'multipart/form-data; boundary=x' },
    { 'Content-Type': 'application/json' },
    { Host: 'x.'.repeat(100) },
    { Host: 'second.localhost:1' },
    { Host: '[::1]:99999' },
    { 'Transfer-Encoding': 'gzip, chunked' },
  ];
  const bodies: (Buffer | undefined)[] = [
    undefined,
    Buffer.alloc(0),
    Buffer.from('{}'),
    Buffer.from('[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['.repeat(2000)),
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: null, layers: [] })),
    Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ digest: 1, size: 'x', mediaType: {} }] })),
    Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [], subject: { size: -1 } }),
    ),
    Buffer.from('{"__proto__":{"polluted":true},"constructor":{"prototype":{}}}'),
    Buffer.from([0xff, 0xfe, 0x00, 0x01]),
    randomBlob(70_000),
  ];
  const methods = ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND'];

  const requests: RawRequest[] = [];
  for (let i = 0; i < 400; i++) {
    const method = pick(methods);
    const body = ['HEAD', 'OPTIONS', 'TRACE'].includes(method) ? undefined : pick(bodies);
    const headers: Record<string, string> = {
      ...pick(headerSets),
      ...(random() < 0.3 ? pick(headerSets) : {}),
    };
    const chunked = body !== undefined && headers['Transfer-Encoding'] === undefined && random() < 0.3;
    const path =
      random() < 0.15
        ? `${upload}${pick(['', '?digest=sha256:abc', `?digest=${tagged}`])}`
        : `/v2/${pick(names)}${pick(endings)}`;
    requests.push({ method, path, headers, ...(body ? { body } : {}), chunked });
  }

  const failures: string[] = [];
  for (let i = 0; i < requests.length; i += 8) {
    await Promise.all(
      requests.slice(i, i + 8).map(async (request) => {
        const res = await rawRequest(berth.url, request).catch((error: Error) => ({ status: -1, error }));
        const label = `${request.method} ${request.path.slice(0, 80)} ${JSON.stringify(request.headers)}`;
        if (res.status < 0 || res.status >= 500) {
          failures.push(`${label} → ${'error' in res ? res.error.message : res.status}`);
          return;
        }
        // Every error our app answers is an OCI error body (requests it answered carry the API version).
        if (
          'body' in res &&
          res.status >= 400 &&
          res.headers['docker-distribution-api-version'] &&
          res.body.length > 0
        ) {
          try {
            assertErrorShape(JSON.parse(res.body.toString()));
          } catch {
            failures.push(`${label} → ${res.status} ${res.body.toString().slice(0, 200)}`);
          }
        }
      }),
    );
  }
  assert.deepEqual(failures, []);
  // And the server is still healthy afterwards.
  assert.equal((await v2fetch(`${berth.url}/v2/`)).status, 200);
  const after = await v2fetch(`${berth.url}/v2/err/untouched/manifests/v1`);
  assert.deepEqual(Buffer.from(await after.arrayBuffer()), safe.bytes);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('requests the router rejects still get OCI error bodies; a request without Host reaches the default registry', async () => {
  const badUrl = await rawRequest(berth.url, { path: '/v2/err/repo/manifests/%' });
  assert.ok(badUrl.status >= 400 && badUrl.status < 500);
  assertErrorShape(JSON.parse(badUrl.body.toString()));
  const emptyHost = await rawRequest(berth.url, { path: '/v2/', headers: { Host: '' } });
  assert.equal(emptyHost.status, 200);
  assert.equal(emptyHost.headers['docker-distribution-api-version'], 'registry/2.0');
  // No Host header at all (HTTP/1.0 style): written by hand, since node:http always adds one.
  const { port } = new URL(berth.url);
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () =>
      socket.write(`GET /v2/ HTTP/1.0\r\nAuthorization: ${ADMIN_AUTH}\r\n\r\n`),
    );
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
  });
  assert.match(raw, /^HTTP\/1\.1 200 /);
  assert.match(raw, /docker-distribution-api-version: registry\/2\.0/i);
});
