// A database written by the previous release opens cleanly: registries gain their version column
// (compare-and-swap works on them at once), and the per-request denial log becomes minute buckets
// with the same counts.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteManagementStore } from '../../src/store/sqlite-management-store.js';
import { SqliteMetadataStore } from '../../src/store/sqlite-metadata-store.js';

test('registries and the denial log of a previous release are upgraded in place', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-upgrade-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'metadata.db');
  const old = new Database(path);
  old.exec(`
    CREATE TABLE registries (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL, properties TEXT NOT NULL);
    CREATE TABLE network_denials (
      id INTEGER PRIMARY KEY AUTOINCREMENT, registry TEXT NOT NULL, time INTEGER NOT NULL,
      client_ip TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL, entry TEXT NOT NULL);
  `);
  old.prepare('INSERT INTO registries VALUES (?, ?, ?)').run('oldreg', 1000, '{"sku":"Premium"}');
  const minute = Date.UTC(2026, 10, 30, 8, 0, 0);
  const insert = old.prepare(
    'INSERT INTO network_denials (registry, time, client_ip, method, path, reason, entry) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  for (let i = 0; i < 5; i++)
    insert.run('oldreg', minute + i * 1000, '10.0.0.1', 'GET', '/v2/', 'ipNotAllowed', 'public');
  insert.run('oldreg', minute + 61_000, '10.0.0.1', 'GET', '/v2/', 'ipNotAllowed', 'public');
  insert.run('oldreg', minute, '10.0.0.2', 'HEAD', '/v2/x', 'publicNetworkAccessDisabled', 'public');
  old.close();

  const meta = new SqliteMetadataStore(path);
  const management = new SqliteManagementStore(path);
  t.after(async () => {
    await meta.close();
    await management.close();
  });
  const record = await meta.getRegistry('oldreg');
  assert.equal(record?.version, 1);
  assert.equal(await meta.updateRegistry('oldreg', { sku: 'Premium', adminUserEnabled: true }, 1), true);
  assert.equal(await meta.updateRegistry('oldreg', {}, 1), false, 'the old version no longer matches');

  const result = await management.queryDenials('oldreg', { limit: 100, seriesSince: new Date(0) });
  assert.deepEqual(
    result.countsByIp.map((c) => [c.clientIp, c.count]),
    [
      ['10.0.0.1', 6],
      ['10.0.0.2', 1],
    ],
  );
  assert.deepEqual(
    result.timeSeries.map((p) => [p.minute.getTime() - minute, p.counts]),
    [
      [0, { ipNotAllowed: 5, publicNetworkAccessDisabled: 1 }],
      [60_000, { ipNotAllowed: 1 }],
    ],
  );
  // Opening it again changes nothing (the old table is gone).
  const again = new SqliteManagementStore(path);
  assert.equal(
    (await again.queryDenials('oldreg', { limit: 100, seriesSince: new Date(0) })).buckets.length,
    3,
  );
  await again.close();
});
