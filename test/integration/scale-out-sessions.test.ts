// Portal sessions in the shared database: a browser signed in through one node stays signed in when
// the load balancer sends it to another, and signing out anywhere ends the session everywhere.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PortalSessions } from '../../src/auth/sessions.js';
import { openSqlDatabase, type SqlDatabaseSpec } from '../../src/store/sql/database.js';
import { migrate } from '../../src/store/sql/migrations.js';
import { SESSION_MIGRATIONS, SqlSessionStore } from '../../src/store/sql/session-store.js';
import { postgresDatabase } from '../helpers/postgres.js';

async function twoNodes(spec: SqlDatabaseSpec): Promise<void> {
  const [one, two] = [await openSqlDatabase(spec), await openSqlDatabase(spec)];
  try {
    // On PostgreSQL both nodes migrate at once, as nodes starting together do (the migrator's lock
    // serialises them); nodes share a SQLite file only in this test, so there one follows the other.
    if (one.dialect === 'postgres')
      await Promise.all([migrate(one, [SESSION_MIGRATIONS]), migrate(two, [SESSION_MIGRATIONS])]);
    else for (const database of [one, two]) await migrate(database, [SESSION_MIGRATIONS]);
    let now = 1_000_000;
    const clock = () => now;
    const limits = { idleMs: 60_000, absoluteMs: 600_000, maxSessions: 3 };
    const nodeA = new PortalSessions(limits, clock, new SqlSessionStore(one));
    const nodeB = new PortalSessions(limits, clock, new SqlSessionStore(two));
    const { token } = await nodeA.create('id-1');
    assert.equal(await nodeB.resolve(token), 'id-1', 'the other node knows the session');
    now += 50_000;
    assert.equal(await nodeB.resolve(token), 'id-1');
    now += 50_000;
    assert.equal(await nodeA.resolve(token), 'id-1', 'use on node B kept it alive on node A');
    now += 61_000;
    assert.equal(await nodeB.resolve(token), undefined, 'idle too long, on every node');
    for (const id of ['b', 'c', 'd', 'e']) await nodeB.create(id);
    assert.equal(await nodeA.count(), 3, 'the cap holds across nodes');
    const kept = await nodeA.create('f');
    assert.equal(await nodeB.resolve(kept.token), 'f');
    await nodeB.revoke(kept.token);
    assert.equal(await nodeA.resolve(kept.token), undefined, 'signing out on node B ends it on node A');
  } finally {
    await one.close();
    await two.close();
  }
}

test('portal sessions are shared by two nodes on one SQLite file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-sessions-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await twoNodes({ sqlitePath: join(dir, 'metadata.db') });
});

test('portal sessions are shared by two nodes on PostgreSQL', async (t) => {
  const url = await postgresDatabase(t);
  if (!url) return;
  await twoNodes({ postgresUrl: url });
});
