// Hashing must not starve the server: blob GET latency on the data plane while wrong passwords arrive
// at the management API (56 a second, each a distinct account, the failed sign-in limits raised so
// every one of them really costs an scrypt). Before the bound on concurrent hashing, this pushed the
// blob GET p99 from 4 ms to 629 ms. Run alone: `node --import tsx bench/sign-in-flood.ts` (after
// `npm run build`).

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { authorizationFor } from './http.js';
import { load, pushSmallBlob, type LoadResult } from './manifest.js';
import { startBerthProcess } from './targets.js';

const FLOOD_PER_SECOND = 56;

const work = mkdtempSync(join(tmpdir(), 'berth-bench-flood-'));
const root = fileURLToPath(new URL('..', import.meta.url));
const config = join(work, 'berth.json');
writeFileSync(
  config,
  JSON.stringify({ auth: { maxFailuresPerAddress: 1_000_000, maxFailuresPerAccount: 1_000_000 } }),
);
const berth = await startBerthProcess(root, work, [], config);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
try {
  const digest = await pushSmallBlob(berth, 'bench/flood', randomBytes(256 * 1024));
  const url = `${berth.url}/v2/bench/flood/blobs/${digest}`;
  const headers = { Authorization: authorizationFor(berth.url)! };
  const measure = () => load(url, 8, seconds, headers);
  await load(url, 8, 2, headers);
  const quiet = await measure();
  let sent = 0;
  let refused = 0;
  const timer = setInterval(() => {
    const user = `guess${sent++}`;
    fetch(`${berth.management!.url}/api/whoami`, {
      headers: { Authorization: `Basic ${Buffer.from(`${user}:wrong`).toString('base64')}` },
    })
      .then((r) => {
        if (r.status !== 401) refused++;
        return r.arrayBuffer();
      })
      .catch(() => refused++);
  }, 1000 / FLOOD_PER_SECOND);
  let flooded: LoadResult;
  try {
    flooded = await measure();
  } finally {
    clearInterval(timer);
  }
  process.stdout.write(
    `blob GET (256 KiB, 8 conn) p99: ${quiet.latencyP99Ms} ms quiet, ${flooded.latencyP99Ms} ms during ` +
      `${FLOOD_PER_SECOND} wrong passwords/s (${sent} sent, ${refused} not answered 401); ` +
      `req/s ${quiet.requestsPerSecond.toFixed(0)} → ${flooded.requestsPerSecond.toFixed(0)}\n`,
  );
} finally {
  await berth.stop();
  rmSync(work, { recursive: true, force: true });
}
