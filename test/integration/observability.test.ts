import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { startBerth, type RunningBerth } from '../../src/server.js';
import {
  apiFor,
  createRegistry,
  dataPlane,
  freePort,
  pushBlobTo,
  pushImageTo,
  uniqueName,
  type Api,
} from '../helpers/management.js';
import { send } from '../helpers/net.js';
import { TEST_ADMIN_PASSWORD } from '../helpers/server.js';

let berth: RunningBerth & { url: string };
let api: Api;
let dataDir: string;
const lines: Record<string, unknown>[] = [];

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'berth-obs-'));
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const running = await startBerth(
    {
      ...structuredClone(DEFAULT_CONFIG),
      listen: ['127.0.0.1:0'],
      managementListen: '127.0.0.1:0',
      adminPassword: TEST_ADMIN_PASSWORD,
      logLevel: 'info',
      dataDir,
      gc: { graceSeconds: 0, intervalSeconds: 0 },
    },
    pino({ level: 'info' }, sink),
  );
  berth = { ...running, url: running.urls[0]! };
  api = apiFor(berth);
});
after(async () => {
  await berth.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function scrape(): Promise<string> {
  const res = await fetch(`${berth.managementUrl}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return res.text();
}

/** The value of one sample, e.g. `berth_http_requests_total{registry="x",…}`, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
    if (!line.startsWith(`${name}{`)) continue;
    const open = line.indexOf('{');
    const close = line.lastIndexOf('}');
    const found = new Map(
      [...line.slice(open + 1, close).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]),
    );
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) return Number(line.slice(close + 2));
  }
  return undefined;
}

test('metrics: requests, latency, bytes, uploads, store latency, GC, sign-ins and event-loop delay', async () => {
  const name = uniqueName('metrics');
  await createRegistry(api, name);
  const blob = randomBytes(50_000);
  await pushBlobTo(berth, name, 'secret/repo-name', blob);
  await pushImageTo(berth, name, 'secret/repo-name', 'v1');
  assert.equal((await dataPlane(berth, name, 'POST', '/v2/secret/repo-name/blobs/uploads/')).status, 202);
  assert.equal(
    (await dataPlane(berth, name, 'DELETE', `/v2/secret/repo-name/blobs/sha256:${'a'.repeat(64)}`)).status,
    404,
  );
  assert.equal((await api('POST', `/api/registries/${name}/gcRuns`, {})).status, 200);
  const wrong = await fetch(`${berth.url}/v2/`, {
    headers: {
      Host: `${name}.localhost`,
      Authorization: `Basic ${Buffer.from('admin:wrong').toString('base64')}`,
    },
  });
  assert.equal(wrong.status, 401);

  const text = await scrape();
  const labels = { registry: name, route: 'manifest', method: 'PUT', status: '201' };
  assert.equal(sample(text, 'berth_http_requests_total', labels), 1);
  assert.equal(
    sample(text, 'berth_http_requests_total', {
      registry: name,
      route: 'uploads',
      method: 'POST',
      status: '201',
    }),
    3,
  );
  assert.equal(
    sample(text, 'berth_http_requests_total', {
      registry: name,
      route: 'blob',
      method: 'DELETE',
      status: '404',
    }),
    1,
  );
  assert.ok(
    (sample(text, 'berth_http_request_duration_seconds_count', { route: 'manifest', method: 'PUT' }) ?? 0) >=
      1,
  );
  assert.ok(
    (sample(text, 'berth_http_received_bytes_total', { registry: name, route: 'uploads' }) ?? 0) >=
      blob.length,
  );
  assert.ok((sample(text, 'berth_http_sent_bytes_total', { registry: name, route: 'manifest' }) ?? 0) > 0);
  assert.ok((sample(text, 'berth_uploads_in_progress', {}) ?? 0) >= 1, 'the open upload is counted');
  assert.ok(
    (sample(text, 'berth_store_operation_duration_seconds_count', {
      store: 'metadata',
      operation: 'putManifest',
    }) ?? 0) >= 1,
  );
  assert.ok(
    (sample(text, 'berth_store_operation_duration_seconds_count', {
      store: 'blobs',
      operation: 'commitUpload',
    }) ?? 0) >= 3,
  );
  assert.equal(sample(text, 'berth_gc_runs_total', { registry: name, status: 'Succeeded' }), 1);
  assert.equal(sample(text, 'berth_gc_blobs_deleted_total', { registry: name }), 1);
  assert.equal(sample(text, 'berth_gc_bytes_reclaimed_total', { registry: name }), blob.length);
  assert.ok((sample(text, 'berth_sign_ins_total', { result: 'success' }) ?? 0) >= 1, 'sign-ins are counted');
  assert.ok(
    (sample(text, 'berth_sign_ins_total', { result: 'failure' }) ?? 0) >= 1,
    'failed sign-ins are counted',
  );
  assert.ok((sample(text, 'berth_nodejs_eventloop_lag_p99_seconds', {}) ?? -1) >= 0);
  assert.ok((sample(text, 'berth_process_cpu_seconds_total', {}) ?? 0) > 0);
  // Low cardinality: no repository names, no client addresses.
  assert.doesNotMatch(text, /repo-name/);
  assert.doesNotMatch(text, /127\.0\.0\.1/);
});

test('network denials are counted by reason; health probes pass every rule and reveal nothing', async () => {
  const name = uniqueName('healthy');
  await createRegistry(api, name);
  const set = await api('PATCH', `/api/registries/${name}`, {
    properties: { networkRuleSet: { defaultAction: 'Deny', ipRules: [] } },
  });
  assert.equal(set.status, 200, set.text);
  for (let i = 0; i < 15; i++) assert.equal((await dataPlane(berth, name, 'GET', '/v2/')).status, 403);
  assert.equal(
    sample(await scrape(), 'berth_network_denials_total', { registry: name, reason: 'ipNotAllowed' }),
    15,
  );

  const port = await freePort();
  const pe = await api('PUT', `/api/registries/${name}/privateEndpointConnections/pe1`, {
    properties: { privateEndpoint: { address: `127.0.0.1:${port}` } },
  });
  assert.equal(pe.status, 201, pe.text);
  const listeners = [berth.url, `http://127.0.0.1:${port}`, berth.managementUrl];
  for (const base of listeners) {
    for (const [path, body] of [
      ['/healthz', 'ok\n'],
      ['/readyz', 'ready\n'],
    ] as const) {
      const res = await send(base, path, { headers: { Host: `${name}.localhost` } });
      assert.equal(res.status, 200, `${base}${path}`);
      assert.equal(res.body.toString(), body);
      assert.equal(res.headers['docker-distribution-api-version'], undefined);
    }
  }
  // The pending endpoint itself still refuses registry traffic.
  assert.equal((await send(`http://127.0.0.1:${port}`, '/v2/')).status, 403);
});

test('one access-log line per data-plane request, refused clients capped per minute', async () => {
  const name = uniqueName('logged');
  await createRegistry(api, name);
  lines.length = 0;
  const res = await dataPlane(berth, name, 'GET', '/v2/app/tags/list?n=10&last=secret-token');
  assert.equal(res.status, 404);
  const entry = lines.filter((l) => l.msg === 'request');
  assert.equal(entry.length, 1);
  assert.deepEqual(
    {
      ...entry[0],
      time: undefined,
      pid: undefined,
      hostname: undefined,
      reqId: undefined,
      durationMs: undefined,
      bytesOut: undefined,
    },
    {
      level: 30,
      component: 'access',
      msg: 'request',
      method: 'GET',
      path: '/v2/app/tags/list',
      status: 404,
      bytesIn: entry[0]!.bytesIn,
      clientIp: '127.0.0.1',
      registry: name,
      identity: 'admin',
      time: undefined,
      pid: undefined,
      hostname: undefined,
      reqId: undefined,
      durationMs: undefined,
      bytesOut: undefined,
    },
  );
  assert.ok((entry[0]!.bytesOut as number) > 0);
  assert.equal(typeof entry[0]!.durationMs, 'number');
  assert.doesNotMatch(JSON.stringify(lines), /secret-token/);

  const denied = uniqueName('refused');
  await createRegistry(api, denied);
  await api('PATCH', `/api/registries/${denied}`, {
    properties: { networkRuleSet: { defaultAction: 'Deny', ipRules: [] } },
  });
  lines.length = 0;
  for (let i = 0; i < 25; i++) await dataPlane(berth, denied, 'GET', '/v2/', { from: '127.0.0.3' });
  const refusedLines = lines.filter((l) => l.msg === 'request' && l.registry === denied);
  assert.equal(refusedLines.length, 1, 'one line a minute per refused address');
  assert.equal(refusedLines[0]!.denialReason, 'ipNotAllowed');
  assert.equal(refusedLines[0]!.clientIp, '127.0.0.3');
});
