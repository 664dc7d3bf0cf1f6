// kill -9 inside a commit, at each point of its order, then restart: no zombie session, no orphan
// file after reconciliation, every acknowledged blob intact (issue 7, finding 3).

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startChildBerth } from '../helpers/child-server.js';
import { bytes, digestOf, randomBlob } from '../helpers/oci.js';
import { RawConnection, requestHead } from '../helpers/raw-http.js';
import { ADMIN_AUTH } from '../helpers/server.js';

const REPO = 'crash/repo';
const auth = { Authorization: ADMIN_AUTH };

async function pushBlob(url: string, blob: Buffer): Promise<void> {
  const res = await fetch(`${url}/v2/${REPO}/blobs/uploads/?digest=${digestOf(blob)}`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/octet-stream' },
    body: bytes(blob),
  });
  assert.equal(res.status, 201, await res.text());
}

async function startChunked(url: string, blob: Buffer): Promise<string> {
  const started = await fetch(`${url}/v2/${REPO}/blobs/uploads/`, { method: 'POST', headers: auth });
  assert.equal(started.status, 202);
  const location = new URL(started.headers.get('location')!, url).pathname;
  const patched = await fetch(`${url}${location}`, {
    method: 'PATCH',
    headers: { ...auth, 'Content-Type': 'application/octet-stream' },
    body: bytes(blob),
  });
  assert.equal(patched.status, 202);
  return location;
}

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

for (const point of ['after-mark', 'after-rename', 'after-link'] as const) {
  test(`a kill -9 ${point} in a commit heals on restart`, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'berth-crash-'));
    try {
      const acknowledged = [randomBlob(200_000), randomBlob(1000)];
      const first = await startChildBerth({ dataDir });
      for (const blob of acknowledged) await pushBlob(first.url, blob);
      await first.stop();

      const crashing = await startChildBerth({ dataDir }, { BERTH_TEST_CRASH_AT: point });
      const blob = randomBlob(300_000);
      const location = await startChunked(crashing.url, blob);
      const put = fetch(`${crashing.url}${location}?digest=${digestOf(blob)}`, {
        method: 'PUT',
        headers: auth,
      });
      await assert.rejects(put, 'the commit never answers: the process died inside it');
      await crashing.kill9();
      assert.equal(crashing.exit()?.signal, 'SIGKILL');
      // A stray upload file without a session, as a crash inside an older start or cancel leaves.
      writeFileSync(
        join(dataDir, 'blobs', 'default', 'uploads', '00000000-0000-4000-8000-000000000000'),
        'x',
      );

      const restarted = await startChildBerth({ dataDir });
      try {
        const status = await fetch(`${restarted.url}${location}`, { headers: auth });
        if (status.status === 204) {
          // Still resumable (the crash came before the rename): the final PUT completes it.
          const again = await fetch(`${restarted.url}${location}?digest=${digestOf(blob)}`, {
            method: 'PUT',
            headers: auth,
          });
          assert.equal(again.status, 201, `${point}: the retried final PUT completes the upload`);
        } else {
          assert.equal(status.status, 404, `${point}: the session is gone, not a zombie at full offset`);
        }
        assert.equal(
          point === 'after-mark',
          status.status === 204,
          `${point}: resumable only before the rename`,
        );
        for (const content of [...acknowledged, blob]) {
          const res = await fetch(`${restarted.url}/v2/${REPO}/blobs/${digestOf(content)}`, {
            headers: auth,
          });
          assert.equal(res.status, 200, `${point}: blob ${digestOf(content)} is there`);
          assert.equal(digestOf(Buffer.from(await res.arrayBuffer())), digestOf(content), 'and intact');
        }
        assert.deepEqual(files(join(dataDir, 'blobs', 'default', 'uploads')), [], 'no upload file is left');
        assert.equal(files(join(dataDir, 'blobs', 'default', 'blobs')).length, 3, 'no orphan blob file');
      } finally {
        await restarted.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}

test('a client hanging up while the server re-hashes an upload after a restart does not kill it', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-rehash-'));
  try {
    const first = await startChildBerth({ dataDir });
    const location = await startChunked(first.url, randomBlob(48 * 1024 * 1024));
    await first.stop();
    // After the restart the running hash is gone, so the next chunk first re-hashes the 48 MiB.
    const restarted = await startChildBerth({ dataDir });
    try {
      for (let round = 0; round < 3; round++) {
        const conn = await RawConnection.open(restarted.url);
        await conn.write(
          requestHead('PATCH', location, [
            'Content-Length: 1048576',
            'Content-Type: application/octet-stream',
          ]) + 'a few bytes of the chunk',
        );
        await sleep(round * 20);
        conn.destroy();
        await sleep(400);
        assert.ok(
          restarted.alive(),
          `the server died: ${JSON.stringify(restarted.exit())}\n${restarted.stderr()}`,
        );
      }
      const status = await fetch(`${restarted.url}${location}`, { headers: auth });
      assert.equal(status.status, 204, 'the upload is still there at its old offset');
      assert.equal(status.headers.get('range'), `0-${48 * 1024 * 1024 - 1}`);
    } finally {
      await restarted.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
