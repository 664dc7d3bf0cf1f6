import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  bytes,
  digestOf,
  expectError,
  pushBlob,
  pushImage,
  randomBlob,
  startUpload,
  withQuery,
  v2fetch,
} from '../helpers/oci.js';
import { ADMIN_AUTH, startTestBerth } from '../helpers/server.js';

function patch(url: string, chunk: Buffer, start: number): Promise<Response> {
  return v2fetch(url, {
    method: 'PATCH',
    headers: {
      'Content-Range': `${start}-${start + chunk.length - 1}`,
      'Content-Type': 'application/octet-stream',
    },
    body: bytes(chunk),
  });
}

function uploadFiles(dataDir: string): string[] {
  const root = join(dataDir, 'blobs', 'default', 'uploads');
  return existsSync(root) ? readdirSync(root) : [];
}

/**
 * Sends a PATCH whose declared body is `declared` bytes, writes only `sent` of them, waits until the
 * server has written them (`arrived`), then destroys the socket, as a client that crashed mid-chunk would.
 */
async function abortedPatch(
  url: string,
  declared: number,
  sent: Buffer,
  start: number,
  arrived: () => boolean,
): Promise<void> {
  const target = new URL(url);
  await new Promise<void>((resolve) => {
    const req = httpRequest({
      host: target.hostname,
      port: target.port,
      method: 'PATCH',
      path: target.pathname,
      agent: false,
      headers: {
        'Content-Length': declared,
        'Content-Range': `${start}-${start + declared - 1}`,
        Authorization: ADMIN_AUTH,
      },
    });
    req.on('error', () => resolve());
    req.on('response', (res) => {
      res.resume();
      resolve();
    });
    req.on('close', () => resolve());
    req.write(sent, async () => {
      for (let i = 0; i < 500 && !arrived(); i++) await sleep(10);
      req.destroy();
    });
  });
}

test('an upload session survives a restart on the same data directory', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-resume-'));
  try {
    const content = randomBlob(5000);
    let berth = await startTestBerth({ dataDir });
    const upload = new URL(await startUpload(berth.url, 'resume/restart'));
    assert.equal((await patch(upload.href, content.subarray(0, 3000), 0)).status, 202);
    await berth.close();

    berth = await startTestBerth({ dataDir });
    try {
      // Same path, new port.
      const url = `${berth.url}${upload.pathname}`;
      const status = await v2fetch(url);
      assert.equal(status.status, 204);
      assert.equal(status.headers.get('range'), '0-2999');
      assert.equal((await patch(url, content.subarray(3000), 3000)).status, 202);
      const done = await v2fetch(withQuery(url, 'digest', digestOf(content)), { method: 'PUT' });
      assert.equal(done.status, 201, await done.text());
      assert.equal(done.headers.get('docker-content-digest'), digestOf(content));
      const get = await v2fetch(`${berth.url}/v2/resume/restart/blobs/${digestOf(content)}`);
      assert.deepEqual(Buffer.from(await get.arrayBuffer()), content);
    } finally {
      await berth.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a wrong digest after a restart is still refused (the prefix is re-hashed, not trusted)', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-resume-'));
  try {
    const content = randomBlob(2000);
    let berth = await startTestBerth({ dataDir });
    const upload = new URL(await startUpload(berth.url, 'resume/rehash'));
    assert.equal((await patch(upload.href, content.subarray(0, 1000), 0)).status, 202);
    await berth.close();
    berth = await startTestBerth({ dataDir });
    try {
      const url = `${berth.url}${upload.pathname}`;
      const tampered = Buffer.from(content);
      tampered[1500] = tampered[1500]! ^ 0xff;
      assert.equal((await patch(url, content.subarray(1000), 1000)).status, 202);
      await expectError(
        await v2fetch(withQuery(url, 'digest', digestOf(tampered)), { method: 'PUT' }),
        400,
        'DIGEST_INVALID',
      );
    } finally {
      await berth.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('abandoned uploads expire: status 404 and the upload file removed', async () => {
  const berth = await startTestBerth({ registry: { uploadTtlSeconds: 1 } });
  try {
    const stale = await startUpload(berth.url, 'resume/expire');
    assert.equal((await patch(stale, randomBlob(100), 0)).status, 202);
    const staleId = new URL(stale).pathname.split('/').pop()!;
    assert.ok(uploadFiles(berth.dataDir).includes(staleId));

    // Purge as of a moment well past the TTL; a fresh upload made "now" would also be stale then,
    // so check the purge count covers ours and the file is gone.
    const purged = await berth.service.uploads.purgeStaleUploads(new Date(Date.now() + 5000));
    assert.ok(purged >= 1);
    await expectError(await v2fetch(stale), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await patch(stale, randomBlob(10), 100), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.ok(!uploadFiles(berth.dataDir).includes(staleId));

    // An upload touched recently is kept by a purge as of now.
    const fresh = await startUpload(berth.url, 'resume/expire');
    assert.equal(await berth.service.uploads.purgeStaleUploads(new Date(Date.now() - 5000)), 0);
    assert.equal((await v2fetch(fresh)).status, 204);
  } finally {
    await berth.stop();
  }
});

test('the purge timer expires uploads on its own', async () => {
  const berth = await startTestBerth({ registry: { uploadTtlSeconds: 1 } });
  try {
    const upload = await startUpload(berth.url, 'resume/timer');
    let status = 204;
    for (let i = 0; i < 40 && status === 204; i++) {
      await sleep(250);
      const res = await v2fetch(upload);
      status = res.status;
      await res.arrayBuffer();
    }
    assert.equal(status, 404);
  } finally {
    await berth.stop();
  }
});

test('a body aborted mid-PATCH leaves the upload resumable from the last accepted offset', async () => {
  const berth = await startTestBerth();
  try {
    const content = randomBlob(300_000);
    const upload = await startUpload(berth.url, 'resume/abort');
    assert.equal((await patch(upload, content.subarray(0, 100_000), 0)).status, 202);

    // Promise 100 000 more bytes, send 40 000 of them (different bytes!) and hang up once the server
    // has written them past the accepted offset.
    const id = new URL(upload).pathname.split('/').pop()!;
    const uploadSize = () => statSync(join(berth.dataDir, 'blobs', 'default', 'uploads', id)).size;
    await abortedPatch(upload, 100_000, randomBlob(40_000), 100_000, () => uploadSize() >= 140_000);
    assert.equal(uploadSize(), 140_000, 'the partial chunk reached the upload file');
    // ...but the session still says 100 000, and the next chunk resumes from there (retrying while the
    // server may still be tearing the aborted request down).
    const status = await v2fetch(upload);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-99999');
    let next = await patch(upload, content.subarray(100_000, 200_000), 100_000);
    for (let i = 0; i < 50 && next.status === 416; i++) {
      assert.equal(next.headers.get('range'), '0-99999');
      await next.arrayBuffer();
      await sleep(20);
      next = await patch(upload, content.subarray(100_000, 200_000), 100_000);
    }
    assert.equal(next.status, 202);
    assert.equal((await patch(upload, content.subarray(200_000), 200_000)).status, 202);
    const done = await v2fetch(withQuery(upload, 'digest', digestOf(content)), { method: 'PUT' });
    assert.equal(done.status, 201, await done.text());
    const get = await v2fetch(`${berth.url}/v2/resume/abort/blobs/${digestOf(content)}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), content);

    // The server keeps serving other requests.
    const other = randomBlob(10);
    assert.equal(await pushBlob(berth.url, 'resume/abort', other), digestOf(other));
  } finally {
    await berth.stop();
  }
});

test('a body aborted mid-PUT does not commit a partial blob', async () => {
  const berth = await startTestBerth();
  try {
    const content = randomBlob(200_000);
    const upload = await startUpload(berth.url, 'resume/abort-put');
    const target = new URL(withQuery(upload, 'digest', digestOf(content)));
    await new Promise<void>((resolve) => {
      const req = httpRequest({
        host: target.hostname,
        port: target.port,
        method: 'PUT',
        path: `${target.pathname}${target.search}`,
        agent: false,
        headers: { 'Content-Length': content.length, Authorization: ADMIN_AUTH },
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(content.subarray(0, 50_000), () => setTimeout(() => req.destroy(), 100));
    });
    const head = await v2fetch(`${berth.url}/v2/resume/abort-put/blobs/${digestOf(content)}`, {
      method: 'HEAD',
    });
    assert.equal(head.status, 404);
    // The session is still there (or was dropped), never half-committed; a fresh push works.
    assert.equal(await pushBlob(berth.url, 'resume/abort-put', content), digestOf(content));
  } finally {
    await berth.stop();
  }
});

test('cancelling an upload while its PUT is verifying never yields a 500', async () => {
  const berth = await startTestBerth();
  try {
    // sha512 is verified by re-reading the upload, which leaves a window for the DELETE to land in.
    const content = randomBlob(16 * 1024 * 1024);
    const digest = digestOf(content, 'sha512');
    for (let round = 0; round < 2; round++) {
      const upload = await startUpload(berth.url, 'resume/cancel-race');
      assert.equal((await v2fetch(upload, { method: 'PATCH', body: bytes(content) })).status, 202);
      const put = v2fetch(withQuery(upload, 'digest', digest), { method: 'PUT' });
      await sleep(5);
      const [done, cancel] = await Promise.all([put, v2fetch(upload, { method: 'DELETE' })]);
      const text = await done.text();
      assert.ok([201, 404].includes(done.status), `PUT ${done.status}: ${text}`);
      assert.ok([204, 404].includes(cancel.status), `DELETE ${cancel.status}`);
      const head = await v2fetch(`${berth.url}/v2/resume/cancel-race/blobs/${digest}`, { method: 'HEAD' });
      if (done.status === 201) assert.equal(head.status, 200);
      else assert.equal(JSON.parse(text).errors[0].code, 'BLOB_UPLOAD_UNKNOWN');
      if (head.status === 200) {
        assert.equal(
          (await v2fetch(`${berth.url}/v2/resume/cancel-race/blobs/${digest}`, { method: 'DELETE' })).status,
          202,
        );
      }
    }
  } finally {
    await berth.stop();
  }
});

test('manifests, tags, blobs and repositories survive a restart', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-resume-'));
  try {
    let berth = await startTestBerth({ dataDir });
    const image = await pushImage(berth.url, 'resume/persist', 'v1');
    await berth.close();
    berth = await startTestBerth({ dataDir });
    try {
      const manifest = await v2fetch(`${berth.url}/v2/resume/persist/manifests/v1`);
      assert.equal(manifest.status, 200);
      assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), image.bytes);
      const layer = await v2fetch(`${berth.url}/v2/resume/persist/blobs/${image.layers[0]!.digest}`);
      assert.equal(digestOf(Buffer.from(await layer.arrayBuffer())), image.layers[0]!.digest);
      const catalog = (await (await v2fetch(`${berth.url}/v2/_catalog`)).json()) as {
        repositories: string[];
      };
      assert.deepEqual(catalog.repositories, ['resume/persist']);
    } finally {
      await berth.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
