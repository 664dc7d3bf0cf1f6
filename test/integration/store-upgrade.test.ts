// A database written by the previous release opens cleanly: registries gain their version column
// (compare-and-swap works on them at once), and the per-request denial log becomes minute buckets
// with the same counts. A database written by the hand-written SQLite auth, management and webhook
// stores opens with the Kysely ones unchanged and reads back every row.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { SqlAuthStore } from '../../src/store/sql/auth-store.js';
import { openSqlDatabase } from '../../src/store/sql/database.js';
import { SqlManagementStore } from '../../src/store/sql/management-store.js';
import { migrate } from '../../src/store/sql/migrations.js';
import { SqlWebhookStore } from '../../src/store/sql/webhook-store.js';
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
  const database = await openSqlDatabase({ sqlitePath: path });
  await migrate(database);
  const management = new SqlManagementStore(database);
  t.after(async () => {
    await meta.close();
    await database.close();
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
  const reopened = await openSqlDatabase({ sqlitePath: path });
  assert.deepEqual(await migrate(reopened), []);
  const again = new SqlManagementStore(reopened);
  assert.equal(
    (await again.queryDenials('oldreg', { limit: 100, seriesSince: new Date(0) })).buckets.length,
    3,
  );
  await reopened.close();
});

/** The tables exactly as the hand-written SQLite stores (before Kysely) created them. */
const OLD_STORES_DDL = `
CREATE TABLE signing_keys (kid TEXT PRIMARY KEY, alg TEXT NOT NULL, public_jwk TEXT NOT NULL,
  sealed_private_jwk TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE data_plane_roles (principal_id TEXT NOT NULL, registry TEXT NOT NULL, role TEXT NOT NULL,
  PRIMARY KEY (principal_id, registry, role)) WITHOUT ROWID;
CREATE INDEX data_plane_roles_by_registry ON data_plane_roles (registry);
CREATE TABLE scope_maps (registry TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
  actions TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, version INTEGER NOT NULL,
  PRIMARY KEY (registry, name)) WITHOUT ROWID;
CREATE TABLE tokens (registry TEXT NOT NULL, name TEXT NOT NULL, scope_map TEXT NOT NULL, status TEXT NOT NULL,
  passwords TEXT NOT NULL, properties TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL, PRIMARY KEY (registry, name)) WITHOUT ROWID;
CREATE TABLE sign_ins (minute INTEGER NOT NULL, registry TEXT NOT NULL, identity TEXT NOT NULL,
  client_ip TEXT NOT NULL, listener TEXT NOT NULL, result TEXT NOT NULL, count INTEGER NOT NULL,
  last_seen INTEGER NOT NULL, PRIMARY KEY (minute, registry, identity, client_ip, listener, result));
CREATE INDEX sign_ins_by_registry ON sign_ins (registry, minute);
CREATE TABLE identities (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
  secret_hash TEXT NOT NULL, trusted_service INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
ALTER TABLE identities ADD COLUMN allowed_networks TEXT;
CREATE TABLE role_assignments (principal_id TEXT NOT NULL, registry TEXT NOT NULL, role TEXT NOT NULL,
  PRIMARY KEY (principal_id, registry)) WITHOUT ROWID;
CREATE TABLE network_denial_counts (registry TEXT NOT NULL, minute INTEGER NOT NULL, client_ip TEXT NOT NULL,
  reason TEXT NOT NULL, entry TEXT NOT NULL, report_only INTEGER NOT NULL, count INTEGER NOT NULL,
  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, samples TEXT NOT NULL,
  PRIMARY KEY (registry, minute, client_ip, reason, entry, report_only)) WITHOUT ROWID;
CREATE INDEX network_denial_counts_by_last_seen ON network_denial_counts (registry, last_seen);
CREATE INDEX network_denial_counts_by_minute ON network_denial_counts (minute);
CREATE TABLE ip_sets (name TEXT PRIMARY KEY, ranges TEXT NOT NULL, description TEXT NOT NULL,
  created_at INTEGER NOT NULL, version INTEGER NOT NULL);
CREATE TABLE webhooks (registry TEXT NOT NULL, name TEXT NOT NULL, service_uri TEXT NOT NULL,
  actions TEXT NOT NULL, scope TEXT NOT NULL, custom_headers TEXT NOT NULL, status TEXT NOT NULL,
  secret TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (registry, name)) WITHOUT ROWID;
CREATE TABLE webhook_deliveries (id TEXT PRIMARY KEY, registry TEXT NOT NULL, webhook TEXT NOT NULL,
  event_id TEXT NOT NULL, action TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL, last_status_code INTEGER, last_error TEXT,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (registry, webhook, created_at);
`;

test('a database of the hand-written SQLite stores opens with the shared stores and keeps every row', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-upgrade-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'metadata.db');
  const old = new Database(path);
  old.exec(OLD_STORES_DDL);
  const row = (table: string, values: unknown[]) =>
    old.prepare(`INSERT INTO ${table} VALUES (${values.map(() => '?').join(', ')})`).run(...values);
  row('signing_keys', ['k1', 'ES256', '{"kty":"EC"}', 'sealed', 1000]);
  row('data_plane_roles', ['p1', 'reg', 'AcrPush']);
  row('scope_maps', ['reg', 'readers', 'd', '["repositories/app/content/read"]', 1000, 2000, 3]);
  row('tokens', [
    'reg',
    'ci',
    'readers',
    'disabled',
    '[{"name":"password1","hash":"h1","createdAt":1000,"expiry":9000},{"name":"password2","hash":"h2","createdAt":1001}]',
    '{"allowedIpRanges":["10.0.0.0/8"]}',
    1000,
    2000,
    4,
  ]);
  row('sign_ins', [60_000, 'reg', 'ci', '127.0.0.2', 'data', 'failure', 5, 61_000]);
  row('identities', ['u1', 'admin', 'user', 'scrypt$x', 0, 1000, null]);
  row('identities', ['k1', 'key', 'apiKey', 'scrypt$y', 1, 1000, '["10.0.0.0/8"]']);
  row('role_assignments', ['u1', '*', 'Owner']);
  row('network_denial_counts', [
    'reg',
    60_000,
    '10.0.0.1',
    'ipNotAllowed',
    'public',
    1,
    7,
    60_001,
    60_002,
    '[{"method":"GET","path":"/v2/"}]',
  ]);
  row('ip_sets', ['office', '["10.1.0.0/16"]', 'HQ', 1000, 2]);
  row('webhooks', ['reg', 'h', 'http://127.0.0.1:9/', '["push"]', '', '{"A":"b"}', 'enabled', 's', 1000]);
  row('webhook_deliveries', ['d1', 'reg', 'h', 'e1', 'push', '{}', 'pending', 1, 500, 500, 'boom', 100, 200]);
  row('webhook_deliveries', ['d2', 'reg', 'h', 'e2', 'push', '{}', 'delivered', 1, 0, 200, null, 100, 300]);
  const schemaOf = (db: Database.Database) =>
    db
      .prepare(
        "SELECT name, sql FROM sqlite_master WHERE tbl_name NOT LIKE 'berth_migrations%' ORDER BY name",
      )
      .all();
  const before = schemaOf(old);
  old.close();

  const database = await openSqlDatabase({ sqlitePath: path });
  t.after(() => database.close());
  await migrate(database);
  const auth = new SqlAuthStore(database);
  const management = new SqlManagementStore(database);
  const webhooks = new SqlWebhookStore(database);

  assert.deepEqual(await auth.listSigningKeys(), [
    {
      kid: 'k1',
      alg: 'ES256',
      publicJwk: '{"kty":"EC"}',
      sealedPrivateJwk: 'sealed',
      createdAt: new Date(1000),
    },
  ]);
  assert.deepEqual(await auth.dataPlaneRolesOn('reg'), [
    { principalId: 'p1', registry: 'reg', role: 'AcrPush' },
  ]);
  assert.deepEqual(await auth.getScopeMap('reg', 'readers'), {
    registry: 'reg',
    name: 'readers',
    description: 'd',
    actions: ['repositories/app/content/read'],
    createdAt: new Date(1000),
    updatedAt: new Date(2000),
    version: 3,
  });
  const token = await auth.getToken('reg', 'ci');
  assert.deepEqual(token, {
    registry: 'reg',
    name: 'ci',
    scopeMap: 'readers',
    status: 'disabled',
    passwords: [
      { name: 'password1', hash: 'h1', createdAt: new Date(1000), expiry: new Date(9000) },
      { name: 'password2', hash: 'h2', createdAt: new Date(1001) },
    ],
    properties: { allowedIpRanges: ['10.0.0.0/8'] },
    createdAt: new Date(1000),
    updatedAt: new Date(2000),
    version: 4,
  });
  assert.equal(await auth.updateToken({ ...token!, status: 'enabled', version: 5 }, 4), true);
  await auth.appendSignIns([
    {
      minute: new Date(60_000),
      registry: 'reg',
      identity: 'ci',
      clientIp: '127.0.0.2',
      listener: 'data',
      result: 'failure',
      count: 2,
      lastSeen: new Date(62_000),
    },
  ]);
  assert.deepEqual(
    (await auth.querySignIns({ limit: 10 })).map((r) => [r.count, r.lastSeen.getTime()]),
    [[7, 62_000]],
  );

  assert.deepEqual(await management.getIdentity('k1'), {
    id: 'k1',
    name: 'key',
    kind: 'apiKey',
    secretHash: 'scrypt$y',
    trustedService: true,
    allowedNetworks: ['10.0.0.0/8'],
    createdAt: new Date(1000),
  });
  assert.equal((await management.findIdentityByName('admin'))?.trustedService, false);
  assert.deepEqual(await management.rolesOf('u1'), [{ principalId: 'u1', registry: '*', role: 'Owner' }]);
  const denials = await management.queryDenials('reg', { limit: 10, seriesSince: new Date(0) });
  assert.deepEqual(denials.timeSeries, [
    { minute: new Date(60_000), counts: { 'reportOnly:ipNotAllowed': 7 } },
  ]);
  assert.deepEqual(denials.buckets[0]!.samples, [{ method: 'GET', path: '/v2/' }]);
  assert.deepEqual(await management.getIpSet('office'), {
    name: 'office',
    ranges: ['10.1.0.0/16'],
    description: 'HQ',
    createdAt: new Date(1000),
    version: 2,
  });
  assert.equal(
    await management.putIpSet({ name: 'office', ranges: [], description: '', createdAt: new Date(1000) }, 2),
    true,
  );

  assert.equal((await webhooks.getWebhook('reg', 'h'))?.customHeaders.A, 'b');
  assert.deepEqual(
    (await webhooks.listDeliveries('reg', 'h', 10)).map((d) => [d.id, d.status, d.lastError]),
    [
      ['d2', 'delivered', undefined],
      ['d1', 'pending', 'boom'],
    ],
    'same created_at: the later row first',
  );
  assert.deepEqual(
    (await webhooks.claimDue(1000, 10, 100)).map((d) => d.id),
    ['d1'],
  );

  // The tables themselves are untouched: the same definitions, so the previous release can still open them.
  const reader = new Database(path, { readonly: true });
  t.after(() => reader.close());
  assert.deepEqual(schemaOf(reader), before);
});
