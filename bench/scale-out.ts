// Scale-out: blob push/pull and manifest GET on PostgreSQL + Azurite beside SQLite + the data directory,
// manifest GET with 1, 2 and 3 nodes behind a round-robin client, and how long a rule removed on one node
// takes to refuse requests on another. PostgreSQL and Azurite are started the way the tests start them.
// Run alone with `node --import tsx bench/scale-out.ts` (BENCH_QUICK=1 for a smoke run).

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { startChildBerth, type ChildBerth } from '../test/helpers/child-server.js';
import { AZURITE_ACCOUNT, azuriteContainer } from '../test/helpers/azurite.js';
import { dataPlane, sha256 } from '../test/helpers/management.js';
import { postgresCluster } from '../test/helpers/postgres.js';
import { ADMIN_AUTH, type ConfigOverrides } from '../test/helpers/server.js';
import pg from 'pg';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** A measured value, in the shape `bench/run.ts` reports beside its own rows. */
export interface ScaleOutRow {
  name: string;
  value: number;
  unit: string;
  /** What the row should be, as printed (`< 100 ms`); the other bench modules' rows say it the same way. */
  target?: string;
}

interface Sizes {
  blobBytes: number;
  manifestSeconds: number;
  connections: number;
  propagationRounds: number;
}

const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);

/** Runs every scale-out measurement; no rows (with a note) when PostgreSQL or Azurite is missing. */
export async function benchScaleOut(quick = process.env.BENCH_QUICK === '1'): Promise<ScaleOutRow[]> {
  const sizes: Sizes = quick
    ? { blobBytes: 16 * MiB, manifestSeconds: 3, connections: 32, propagationRounds: 20 }
    : { blobBytes: 128 * MiB, manifestSeconds: 10, connections: 64, propagationRounds: 100 };
  const cluster = await postgresCluster();
  // The azurite helper reports a missing binary through a test context; here that is a note.
  const azure = await azuriteContainer({ name: 'bench', skip: () => undefined } as unknown as TestContext);
  if (!cluster || !azure) {
    progress('scale-out bench skipped: PostgreSQL or Azurite is not installed');
    return [];
  }
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-scale-'));
  const nodes: ChildBerth[] = [];
  try {
    const database = await createDatabase(cluster.url('postgres'), `berth_bench_${process.pid}`);
    const shared: ConfigOverrides = {
      database,
      blobStore: `azure://${AZURITE_ACCOUNT}/${azure.container}`,
      azureStorageConnectionString: azure.connectionString,
      secretKeyFile: join(work, 'berth.key'),
    };
    const start = async (name: string, overrides: ConfigOverrides) => {
      const node = await startChildBerth({ dataDir: join(work, name), ...overrides });
      nodes.push(node);
      return node;
    };
    const embedded = await start('embedded', {});
    const first = await start('node-1', { ...shared, nodeId: 'node-1' });
    const rows: ScaleOutRow[] = [];
    const blob = join(work, 'blob.bin');
    writeFileSync(blob, randomBytes(sizes.blobBytes));
    for (const [label, node] of [
      ['SQLite + filesystem', embedded],
      ['PostgreSQL + Azurite', first],
    ] as const) {
      const push = await pushWithCurl(node, blob, sizes.blobBytes);
      const pull = await pullWithCurl(node, push.digest, sizes.blobBytes);
      progress(`${label}: push ${push.mibPerSecond.toFixed(0)} MiB/s, pull ${pull.toFixed(0)} MiB/s`);
      rows.push(
        { name: `scale-out: blob push POST ?digest=, ${label}`, value: push.mibPerSecond, unit: 'MiB/s' },
        { name: `scale-out: blob pull, ${label}`, value: pull, unit: 'MiB/s' },
      );
      const manifestPath = await pushSmallImage(node);
      const rps = await wrkAll([node], manifestPath, sizes);
      progress(`${label}: manifest GET ${rps.toFixed(0)} req/s`);
      rows.push({ name: `scale-out: manifest GET, ${label}, 1 node`, value: rps, unit: 'req/s' });
    }
    await stopAll(nodes.splice(0, 1));
    const second = await start('node-2', { ...shared, nodeId: 'node-2' });
    const third = await start('node-3', { ...shared, nodeId: 'node-3' });
    const manifestPath = '/v2/bench/image/manifests/v1';
    for (const count of [2, 3]) {
      const rps = await wrkAll([first, second, third].slice(0, count), manifestPath, sizes);
      progress(`PostgreSQL + Azurite: manifest GET ${rps.toFixed(0)} req/s over ${count} nodes`);
      rows.push({
        name: `scale-out: manifest GET, PostgreSQL + Azurite, ${count} nodes`,
        value: rps,
        unit: 'req/s',
      });
    }
    const latencies = await propagation(first, second, sizes.propagationRounds);
    const [p50, p99] = [percentile(latencies, 50), percentile(latencies, 99)];
    progress(`rule propagation node 1 → node 2: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
    rows.push(
      { name: 'scale-out: rule removal on node 1 → refused on node 2, p50', value: p50, unit: 'ms' },
      {
        name: 'scale-out: rule removal on node 1 → refused on node 2, p99',
        value: p99,
        unit: 'ms',
        target: '< 100 ms',
      },
    );
    return rows;
  } finally {
    await stopAll(nodes);
    rmSync(work, { recursive: true, force: true });
  }
}

async function stopAll(nodes: ChildBerth[]): Promise<void> {
  await Promise.allSettled(nodes.map((node) => node.stop()));
}

async function createDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name}`);
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return adminUrl.replace(/\/postgres$/, `/${name}`);
}

const curlAuth = ['-H', `Authorization: ${ADMIN_AUTH}`];

/** A monolithic upload (`POST ?digest=`) of the file with curl; wall-clock MiB/s. */
async function pushWithCurl(node: ChildBerth, file: string, bytes: number) {
  const { stdout: hash } = await run('sha256sum', [file]);
  const digest = `sha256:${hash.split(' ')[0]}`;
  const url = `${node.url}/v2/bench/blob/blobs/uploads/?digest=${digest}`;
  const started = process.hrtime.bigint();
  const { stdout } = await run(
    'curl',
    [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      ...curlAuth,
      '-H',
      'Content-Type: application/octet-stream',
      '--data-binary',
      `@${file}`,
      url,
    ],
    { maxBuffer: MiB },
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (stdout.trim() !== '201') throw new Error(`blob push answered ${stdout}`);
  return { digest, mibPerSecond: bytes / MiB / seconds };
}

/** A blob GET with curl into /dev/null; wall-clock MiB/s. */
async function pullWithCurl(node: ChildBerth, digest: string, bytes: number): Promise<number> {
  const started = process.hrtime.bigint();
  const { stdout } = await run('curl', [
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{size_download}',
    ...curlAuth,
    `${node.url}/v2/bench/blob/blobs/${digest}`,
  ]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (stdout.trim() !== `200 ${bytes}`) throw new Error(`blob pull answered ${stdout}`);
  return bytes / MiB / seconds;
}

/** Pushes a tiny image (config, layer, manifest `v1`) and returns the manifest path. */
async function pushSmallImage(node: ChildBerth): Promise<string> {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = randomBytes(1024);
  for (const blob of [config, layer]) {
    const upload = `/v2/bench/image/blobs/uploads/?digest=${sha256(blob)}`;
    const res = await dataPlane(node, 'default', 'POST', upload, { body: blob });
    if (res.status !== 201) throw new Error(`blob push answered ${res.status}`);
  }
  const descriptor = (mediaType: string, data: Buffer) => ({
    mediaType,
    digest: sha256(data),
    size: data.length,
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: descriptor('application/vnd.oci.image.config.v1+json', config),
      layers: [descriptor('application/vnd.oci.image.layer.v1.tar', layer)],
    }),
  );
  const path = '/v2/bench/image/manifests/v1';
  const res = await dataPlane(node, 'default', 'PUT', path, {
    body: manifest,
    headers: { 'Content-Type': OCI_MANIFEST },
  });
  if (res.status !== 201) throw new Error(`manifest push answered ${res.status}`);
  return path;
}

/**
 * Manifest GETs against every node at once — one wrk per node with an equal share of the connections,
 * which is what a round-robin balancer in front of them does — and the summed requests per second.
 */
async function wrkAll(nodes: ChildBerth[], path: string, sizes: Sizes): Promise<number> {
  const perNode = Math.max(1, Math.floor(sizes.connections / nodes.length));
  const results = await Promise.all(
    nodes.map((node) =>
      run('wrk', [
        '-t1',
        `-c${perNode}`,
        `-d${sizes.manifestSeconds}s`,
        '-H',
        `Authorization: ${ADMIN_AUTH}`,
        '-H',
        'Accept: application/vnd.oci.image.manifest.v1+json',
        `${node.url}${path}`,
      ]),
    ),
  );
  let total = 0;
  for (const { stdout } of results) {
    if (/Non-2xx/.test(stdout)) throw new Error(`wrk saw non-2xx answers: ${stdout}`);
    total += Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
  }
  return total;
}

/**
 * Milliseconds from the answer of a rule removal on node `from` until node `to` refuses a request it
 * allowed before, polled from 127.0.0.3 (a new connection each time). Each round first allows the
 * address again and waits until `to` lets it through.
 */
async function propagation(from: ChildBerth, to: ChildBerth, rounds: number): Promise<number[]> {
  const registry = `prop${process.pid}`;
  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${from.managementUrl}${path}`, {
      method,
      headers: { Authorization: ADMIN_AUTH, 'Content-Type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  const created = await api('PUT', `/api/registries/${registry}`, { sku: { name: 'Premium' } });
  if (created.status !== 201) throw new Error(`creating ${registry}: ${created.status}`);
  const rules = (ipRules: string[]) => ({
    properties: {
      networkRuleSet: {
        defaultAction: 'Deny',
        ipRules: ipRules.map((value) => ({ action: 'Allow', value })),
      },
    },
  });
  // A connection the loaded machine dropped counts as neither answer; the poll goes on.
  const status = () =>
    dataPlane(to, registry, 'GET', '/v2/', { from: '127.0.0.3' }).then(
      (res) => res.status,
      () => 0,
    );
  const latencies: number[] = [];
  for (let round = 0; round < rounds; round++) {
    await api('PATCH', `/api/registries/${registry}`, rules(['127.0.0.3']));
    for (let i = 0; i < 1000 && (await status()) !== 200; i++) await new Promise((r) => setTimeout(r, 2));
    const removed = await api('PATCH', `/api/registries/${registry}`, rules([]));
    if (removed.status !== 200) throw new Error(`removing the rule: ${removed.status}`);
    const answered = process.hrtime.bigint();
    let refused = false;
    for (let i = 0; i < 5000 && !refused; i++) refused = (await status()) === 403;
    if (!refused) throw new Error('node 2 never refused after the rule removal');
    latencies.push(Number(process.hrtime.bigint() - answered) / 1e6);
  }
  return latencies;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await benchScaleOut();
  for (const row of rows) process.stdout.write(`${row.name}: ${row.value.toFixed(1)} ${row.unit}\n`);
  process.stdout.write(`(${cpus().length} cores)\n`);
  process.exit(0);
}
