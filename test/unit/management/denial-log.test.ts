// The denial log's bookkeeping with a controllable clock and a real SQLite store: exact counts
// (across a failed write, too), distinct samples, retention and the size bound, rate-limited lines.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, test } from 'node:test';
import pino from 'pino';
import { DenialLog } from '../../../src/management/denial-log.js';
import { openSqlDatabase, type SqlDatabase } from '../../../src/store/sql/database.js';
import { SqlManagementStore } from '../../../src/store/sql/management-store.js';
import { migrate } from '../../../src/store/sql/migrations.js';
import type { DenialAuditStore, DenialRecord } from '../../../src/store/types.js';

let dir: string;
let database: SqlDatabase;
let store: SqlManagementStore;
let lines: { msg: string; [key: string]: unknown }[];
let clock: number;
const T0 = Date.UTC(2026, 5, 1, 12, 0, 10);

const logger = () =>
  pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _e, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    }),
  );
const denial = (clientIp: string, path = '/v2/', at = clock, reason = 'ipNotAllowed'): DenialRecord => ({
  registry: 'reg',
  time: new Date(at),
  clientIp,
  method: 'GET',
  path,
  reason,
  entry: 'public',
});
const query = (since?: Date) =>
  store.queryDenials('reg', { limit: 1000, seriesSince: new Date(0), ...(since ? { since } : {}) });
const options = { retentionDays: 30, maxEntries: 1000, logIntervalSeconds: 60 };
/** pino writes asynchronously to a plain stream; give it a turn before reading `lines`. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'berth-denials-'));
  database = await openSqlDatabase({ sqlitePath: join(dir, 'm.db') });
  await migrate(database);
  store = new SqlManagementStore(database);
  lines = [];
  clock = T0;
});
afterEach(async () => {
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('DenialLog', () => {
  test('counts per address, reason and minute, exactly, with a few distinct samples', async () => {
    const log = new DenialLog(store, logger(), options, () => clock);
    for (let i = 0; i < 1000; i++) log.record(denial('10.0.0.1', `/v2/p${i % 5}`));
    log.record(denial('10.0.0.1', '/v2/', T0 + 60_000)); // the next minute
    log.record(denial('10.0.0.2', '/v2/', T0, 'publicNetworkAccessDisabled'));
    await log.flush();
    for (let i = 0; i < 10; i++) log.record(denial('10.0.0.1', '/v2/p9')); // same bucket, later flush
    await log.flush();
    const result = await query();
    assert.deepEqual(
      result.countsByIp.map((c) => [c.clientIp, c.count]),
      [
        ['10.0.0.1', 1011],
        ['10.0.0.2', 1],
      ],
    );
    const first = result.buckets.find(
      (b) => b.clientIp === '10.0.0.1' && b.minute.getTime() === T0 - 10_000,
    )!;
    assert.equal(first.count, 1010);
    assert.deepEqual(
      first.samples.map((s) => s.path),
      ['/v2/p0', '/v2/p1', '/v2/p2'],
      'at most three distinct samples, the first ones kept',
    );
    assert.deepEqual(
      result.timeSeries.map((p) => [p.minute.toISOString(), p.counts]),
      [
        ['2026-06-01T12:00:00.000Z', { ipNotAllowed: 1010, publicNetworkAccessDisabled: 1 }],
        ['2026-06-01T12:01:00.000Z', { ipNotAllowed: 1 }],
      ],
    );
  });

  test('a failed write keeps its counts for the next one', async () => {
    let fail = true;
    const flaky: DenialAuditStore = {
      addDenialCounts: (buckets) => {
        if (fail) {
          fail = false;
          return Promise.reject(new Error('database is locked'));
        }
        return store.addDenialCounts(buckets);
      },
      queryDenials: (r, f) => store.queryDenials(r, f),
      pruneDenials: (b, m) => store.pruneDenials(b, m),
      deleteDenialsForRegistry: (r) => store.deleteDenialsForRegistry(r),
    };
    const log = new DenialLog(flaky, logger(), options, () => clock);
    for (let i = 0; i < 7; i++) log.record(denial('10.0.0.1'));
    await log.flush();
    assert.deepEqual((await query()).countsByIp, []);
    await settle();
    assert.ok(lines.some((l) => l.msg === 'denial log write failed'));
    log.record(denial('10.0.0.1'));
    await log.flush();
    assert.equal((await query()).countsByIp[0]!.count, 8);
  });

  test('retention drops old minutes; the size bound drops the oldest whole minutes', async () => {
    const log = new DenialLog(store, logger(), { ...options, maxEntries: 2 }, () => clock);
    const day = 86_400_000;
    log.record(denial('10.0.0.1', '/v2/', T0 - 31 * day));
    log.record(denial('10.0.0.1', '/v2/', T0 - 2 * day));
    log.record(denial('10.0.0.2', '/v2/', T0 - 2 * day));
    log.record(denial('10.0.0.3', '/v2/', T0 - day));
    log.record(denial('10.0.0.4', '/v2/', T0));
    await log.prune();
    const kept = (await query()).buckets.map((b) => b.clientIp).sort();
    // 31 days is past retention; of the rest, the oldest minute (two rows) goes to stay within 2.
    assert.deepEqual(kept, ['10.0.0.3', '10.0.0.4']);
    await settle();
    assert.ok(lines.some((l) => l.msg === 'denial log pruned' && l.deleted === 3));
  });

  test('log lines: one per address per interval, saying how many it stands for, and a ceiling overall', async () => {
    const log = new DenialLog(store, logger(), options, () => clock);
    const denied = () => lines.filter((l) => l.msg === 'network access denied');
    for (let i = 0; i < 100; i++) log.record(denial('10.0.0.1'));
    await settle();
    assert.equal(denied().length, 1);
    clock += 61_000;
    log.record(denial('10.0.0.1'));
    await settle();
    assert.equal(denied().length, 2);
    assert.equal(denied()[1]!.alsoDeniedSinceLastLine, 99);
    assert.equal(denied()[1]!.clientIp, '10.0.0.1');
    // 100 new addresses in one second: 20 lines, the rest summed up at the next flush.
    lines = [];
    clock += 1_000;
    for (let i = 0; i < 100; i++) log.record(denial(`10.1.0.${i}`));
    await settle();
    assert.equal(denied().length, 20);
    await log.flush();
    await settle();
    assert.deepEqual(
      lines.filter((l) => l.msg === 'denial log lines suppressed').map((l) => l.suppressed),
      [80],
    );
    // The counts are all there regardless of the log lines.
    assert.equal(
      (await query()).countsByIp.reduce((n, c) => n + c.count, 0),
      201,
    );
  });
});
