// A flood of refused requests cannot fill the denial log or the server log: 200k denied requests
// from 50 loopback addresses, sent as keep-alive pipelines over raw sockets, are all counted exactly
// (API and `berth audit denials` agree), while the database grows by a few rows per address and
// minute and the server log by a line per address.

import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { DEFAULT_CONFIG, type BerthConfig } from '../../src/config.js';
import { startBerth, type RunningBerth } from '../../src/server.js';
import { denials, endpointOf, setNetwork } from '../helpers/net.js';
import { ADMIN_AUTH, TEST_ADMIN_PASSWORD, type TestBerth } from '../helpers/server.js';
import { isolatedEnv, runBerth } from '../unit/cli/helpers/e2e.js';

const ADDRESSES = Array.from({ length: 50 }, (_, i) => `127.0.0.${10 + i}`);
const PER_ADDRESS = 4_000;
const TOTAL = ADDRESSES.length * PER_ADDRESS;

let berth: RunningBerth & Pick<TestBerth, 'url' | 'managementUrl'>;
let dataDir: string;
const log = { lines: 0, bytes: 0, denialLines: 0 };

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'berth-flood-'));
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = chunk.toString('utf8');
      log.bytes += chunk.length;
      for (const line of text.split('\n')) {
        if (line === '') continue;
        log.lines++;
        if (line.includes('"network access denied"')) log.denialLines++;
      }
      done();
    },
  });
  const config: BerthConfig = {
    ...structuredClone(DEFAULT_CONFIG),
    listen: ['127.0.0.1:0'],
    managementListen: '127.0.0.1:0',
    logLevel: 'info',
    adminPassword: TEST_ADMIN_PASSWORD,
    dataDir,
  };
  // The server log at the default level, counted instead of printed.
  const running = await startBerth(config, pino({ level: 'info' }, sink));
  berth = { ...running, url: running.urls[0]! };
  await setNetwork(berth as unknown as TestBerth, { defaultAction: 'Deny', ipRules: ['127.0.0.1'] });
});
after(async () => {
  await berth.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const dbBytes = () =>
  ['metadata.db', 'metadata.db-wal'].reduce((n, f) => {
    try {
      return n + statSync(join(dataDir, f)).size;
    } catch {
      return n;
    }
  }, 0);

/** Pipelines `count` keep-alive GETs from `from` on one socket; resolves with the number of 403s read. */
function pipeline(from: string, count: number): Promise<number> {
  const { host, port } = endpointOf(berth.url);
  const one = Buffer.from(
    `GET /v2/flood/manifests/latest HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${ADMIN_AUTH}\r\n\r\n`,
    'latin1',
  );
  const marker = 'HTTP/1.1 403 ';
  return new Promise((resolve, reject) => {
    let seen = 0;
    let tail = '';
    const socket = connect({ host, port, localAddress: from });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${from}: only ${seen} of ${count} answers in time`));
    }, 120_000);
    socket.on('connect', () => {
      // Batches of 500 keep the server's queue of pipelined requests, and our buffers, modest.
      let sent = 0;
      const sendBatch = () => {
        const n = Math.min(500, count - sent);
        if (n <= 0) return;
        sent += n;
        socket.write(Buffer.concat(Array.from({ length: n }, () => one)));
      };
      sendBatch();
      socket.on('data', (chunk: Buffer) => {
        const text = tail + chunk.toString('latin1');
        for (let at = text.indexOf(marker); at !== -1; at = text.indexOf(marker, at + 1)) seen++;
        tail = text.slice(-(marker.length - 1));
        if (seen === count) {
          clearTimeout(timer);
          socket.end();
          resolve(seen);
        } else if (sent - seen < 250) sendBatch();
      });
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

test('200k denied requests from 50 addresses: exact counts, bounded database and server log', async (t) => {
  await berth.access.flush();
  const dbBefore = dbBytes();
  const logBefore = { ...log };
  const answered = await Promise.all(ADDRESSES.map((from) => pipeline(from, PER_ADDRESS)));
  assert.equal(
    answered.reduce((a, b) => a + b, 0),
    TOTAL,
  );

  const result = await denials(berth as unknown as TestBerth, '?limit=10000');
  const byIp = new Map(result.countsByIp.map((c) => [c.clientIp, c.count]));
  for (const ip of ADDRESSES) assert.equal(byIp.get(ip), PER_ADDRESS, `count for ${ip}`);
  assert.equal(
    result.countsByIp.reduce((n, c) => n + c.count, 0),
    TOTAL,
  );
  assert.equal(
    result.value.reduce((n, d) => n + d.count, 0),
    TOTAL,
    'the entries add up to the same total',
  );
  assert.equal(
    result.timeSeries.reduce((n, p) => n + (p.counts.ipNotAllowed ?? 0), 0),
    TOTAL,
    'and so does the time series',
  );
  for (const entry of result.value)
    assert.deepEqual(entry.samples, [{ method: 'GET', path: '/v2/flood/manifests/latest' }]);

  // A row per address and minute (the flood spans a minute boundary or two at most).
  assert.ok(result.value.length <= ADDRESSES.length * 3, `${result.value.length} entries`);
  const growth = dbBytes() - dbBefore;
  t.diagnostic(
    `database growth: ${growth} bytes for ${TOTAL} denials (${Math.round((growth * 100_000) / TOTAL)} bytes per 100k)`,
  );
  assert.ok(growth < 2 * 1024 * 1024, `database grew by ${growth} bytes`);

  const lines = log.lines - logBefore.lines;
  const bytes = log.bytes - logBefore.bytes;
  t.diagnostic(`server log: ${lines} lines, ${bytes} bytes for ${TOTAL} denials`);
  // One line per address (per minute), plus a few "lines suppressed" summaries and management requests.
  assert.ok(
    log.denialLines - logBefore.denialLines <= ADDRESSES.length * 3,
    `${log.denialLines} denial lines`,
  );
  assert.ok(lines < 500, `${lines} log lines`);
  assert.ok(bytes < 200 * 1024, `${bytes} log bytes`);

  // `berth audit denials` reports the same numbers as the API.
  const env = {
    ...isolatedEnv().env,
    BERTH_SERVER: berth.managementUrl,
    BERTH_USERNAME: 'admin',
    BERTH_PASSWORD: TEST_ADMIN_PASSWORD,
  };
  const cli = await runBerth(['audit', 'denials', '-n', 'default', '--limit', '10000'], env);
  assert.equal(cli.code, 0, cli.stderr);
  const shown = JSON.parse(cli.stdout) as typeof result;
  assert.deepEqual(shown.countsByIp, result.countsByIp);
  assert.deepEqual(shown.timeSeries, result.timeSeries);
});
