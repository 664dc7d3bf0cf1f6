// Every data-plane endpoint is guarded: each request is sent once from a refused address (403 DENIED,
// no side effect) and then from an allowed one (the endpoint's real answer), and each refusal is logged.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { denials, expectDenied, send, setNetwork } from '../helpers/net.js';
import { MT, digestOf, pushArtifact, pushImage, startUpload, type PushedManifest } from '../helpers/oci.js';
import { startTestBerth, type TestBerth } from '../helpers/server.js';

const REPO = 'guarded/app';
const ALLOWED = '127.0.0.2';
const REFUSED = '127.0.0.3';

interface Case {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** What the allowed address gets, proving the endpoint is real and the refusal changed nothing. */
  allowedStatus: number;
}

let berth: TestBerth;
let image: PushedManifest & { config: { digest: string }; layers: { digest: string }[] };
let referrer: PushedManifest;
let uploadPath: string;
let cancelPath: string;
let cases: Case[];

before(async () => {
  berth = await startTestBerth();
  // Content first, while everyone may connect (fetch leaves from 127.0.0.1).
  image = await pushImage(berth.url, REPO, 'v1');
  referrer = await pushArtifact(berth.url, REPO, image.descriptor, 'application/vnd.example.sbom');
  uploadPath = new URL(await startUpload(berth.url, REPO)).pathname;
  cancelPath = new URL(await startUpload(berth.url, REPO)).pathname;
  const chunk = Buffer.from('abc');
  const last = Buffer.from('def');
  const blobDigest = digestOf(Buffer.concat([chunk, last]));
  const octet = { 'Content-Type': 'application/octet-stream' };
  cases = [
    { method: 'GET', path: '/v2/', allowedStatus: 200 },
    { method: 'HEAD', path: '/v2/', allowedStatus: 200 },
    { method: 'GET', path: '/v2/_catalog', allowedStatus: 200 },
    { method: 'GET', path: `/v2/${REPO}/tags/list`, allowedStatus: 200 },
    { method: 'GET', path: `/v2/${REPO}/manifests/v1`, allowedStatus: 200 },
    { method: 'HEAD', path: `/v2/${REPO}/manifests/v1`, allowedStatus: 200 },
    { method: 'GET', path: `/v2/${REPO}/manifests/${image.digest}`, allowedStatus: 200 },
    { method: 'GET', path: `/v2/${REPO}/blobs/${image.layers[0]!.digest}`, allowedStatus: 200 },
    { method: 'HEAD', path: `/v2/${REPO}/blobs/${image.layers[0]!.digest}`, allowedStatus: 200 },
    { method: 'GET', path: `/v2/${REPO}/referrers/${image.digest}`, allowedStatus: 200 },
    { method: 'POST', path: `/v2/${REPO}/blobs/uploads/`, allowedStatus: 202 },
    {
      method: 'POST',
      path: `/v2/other/blobs/uploads/?mount=${image.layers[0]!.digest}&from=${REPO}`,
      allowedStatus: 201,
    },
    { method: 'GET', path: uploadPath, allowedStatus: 204 },
    // Content-Range 0-2: had the refused PATCH written anything, the allowed one would get 416.
    {
      method: 'PATCH',
      path: uploadPath,
      headers: { ...octet, 'Content-Range': '0-2' },
      body: chunk,
      allowedStatus: 202,
    },
    {
      method: 'PUT',
      path: `${uploadPath}?digest=${blobDigest}`,
      headers: octet,
      body: last,
      allowedStatus: 201,
    },
    {
      method: 'PUT',
      path: `/v2/${REPO}/manifests/v2`,
      headers: { 'Content-Type': MT.ociManifest },
      body: image.bytes,
      allowedStatus: 201,
    },
    { method: 'DELETE', path: cancelPath, allowedStatus: 204 },
    { method: 'DELETE', path: `/v2/${REPO}/manifests/${referrer.digest}`, allowedStatus: 202 },
    { method: 'DELETE', path: `/v2/${REPO}/blobs/${image.config.digest}`, allowedStatus: 202 },
    { method: 'GET', path: '/v2/no/such/endpoint', allowedStatus: 404 },
  ];
  await setNetwork(berth, { defaultAction: 'Deny', ipRules: [ALLOWED] });
});
after(() => berth.stop());

const request = (from: string, c: Case) =>
  send(berth.url, c.path, {
    from,
    method: c.method,
    headers: { ...c.headers, ...(c.body ? { 'Content-Length': String(c.body.length) } : {}) },
    ...(c.body ? { body: c.body } : {}),
  });

test('every endpoint refuses a denied address with 403 DENIED (HEAD: status only, no body)', async () => {
  for (const c of cases) {
    const res = await request(REFUSED, c);
    if (c.method === 'HEAD') {
      assert.equal(res.status, 403, `${c.method} ${c.path}`);
      assert.equal(res.body.length, 0, `${c.method} ${c.path} must have no body`);
    } else {
      const error = expectDenied(res, REFUSED, 'ipNotAllowed');
      assert.equal(error.detail.registry, 'default');
    }
  }
});

test('the same requests from the allowed address get their real answers, so nothing refused had effect', async () => {
  for (const c of cases) {
    const res = await request(ALLOWED, c);
    assert.equal(res.status, c.allowedStatus, `${c.method} ${c.path}: ${res.text}`);
  }
  const tags = await send(berth.url, `/v2/${REPO}/tags/list`, { from: ALLOWED });
  assert.deepEqual((JSON.parse(tags.text) as { tags: string[] }).tags, ['v1', 'v2']);
});

test('the denial log counts every refused request, with samples, reason and entry', async () => {
  const log = await denials(berth, `?ip=${REFUSED}&limit=1000`);
  const entries = log.value;
  assert.equal(
    entries.reduce((n, d) => n + d.count, 0),
    cases.length,
    JSON.stringify(entries.slice(0, 3)),
  );
  const expected = new Set(cases.map((c) => `${c.method} ${c.path.split('?')[0]}`));
  for (const d of entries) {
    assert.equal(d.clientIp, REFUSED);
    assert.equal(d.reason, 'ipNotAllowed');
    assert.equal(d.entry, 'public');
    assert.ok(Date.parse(d.time) > Date.now() - 120_000, `recent time: ${d.time}`);
    assert.ok(d.samples.length >= 1 && d.samples.length <= 3);
    for (const s of d.samples) assert.ok(expected.has(`${s.method} ${s.path}`), `${s.method} ${s.path}`);
  }
  assert.deepEqual(
    log.countsByIp.map((c) => ({ clientIp: c.clientIp, count: c.count })),
    [{ clientIp: REFUSED, count: cases.length }],
  );
  // The allowed address left no trace in the log.
  assert.equal((await denials(berth, `?ip=${ALLOWED}`)).value.length, 0);
});

test('the denial log counts refusals per address', async () => {
  const count = async (ip: string) =>
    (await denials(berth, `?ip=${ip}`)).countsByIp.reduce((n, c) => n + c.count, 0);
  const before = { a: await count('127.0.0.8'), b: await count('127.0.0.9') };
  for (const from of ['127.0.0.8', '127.0.0.8', '127.0.0.9']) {
    expectDenied(await send(berth.url, '/v2/', { from }), from, 'ipNotAllowed');
  }
  assert.equal(await count('127.0.0.8'), before.a + 2);
  assert.equal(await count('127.0.0.9'), before.b + 1);
  const log = await denials(berth);
  // Newest first.
  const times = log.value.map((d) => Date.parse(d.time));
  assert.deepEqual(
    times,
    [...times].sort((a, b) => b - a),
  );
});
