// The auth, management and webhook stores pass one contract each, on SQLite (the embedded default) and
// on PostgreSQL. On PostgreSQL `node()` opens a second pool on the same database, as a second Berth node
// would. The embedded SQLite database has exactly one node, whose stores share one handle: there `node()`
// is a second set of stores on that handle, so the races are concurrent calls within the process.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { LocalChangeFeed, type ChangeEvent } from '../../src/store/change-feed.js';
import { SqlAuthStore } from '../../src/store/sql/auth-store.js';
import { openSqlDatabase, type SqlDatabase, type SqlDatabaseSpec } from '../../src/store/sql/database.js';
import { SqlManagementStore } from '../../src/store/sql/management-store.js';
import { migrate } from '../../src/store/sql/migrations.js';
import { SqlWebhookStore } from '../../src/store/sql/webhook-store.js';
import { authStoreContract, type SharedStoreFactory } from '../helpers/auth-store-contract.js';
import { managementStoreContract } from '../helpers/management-store-contract.js';
import { postgresDatabase } from '../helpers/postgres.js';
import { webhookStoreContract } from '../helpers/webhook-store-contract.js';

type Open<T> = (database: SqlDatabase, feed: LocalChangeFeed) => T;

/** Stores on a fresh database: a SQLite file in a temporary directory, or a new PostgreSQL database. */
function onDatabase<T>(where: 'sqlite' | 'postgres', open: Open<T>): SharedStoreFactory<T> {
  return async (t?: TestContext) => {
    let spec: SqlDatabaseSpec;
    let remove = () => undefined as void;
    if (where === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), 'berth-contract-'));
      spec = { sqlitePath: join(dir, 'metadata.db') };
      remove = () => rmSync(dir, { recursive: true, force: true });
    } else {
      const url = await postgresDatabase(t!);
      if (!url) return undefined;
      spec = { postgresUrl: url, poolSize: 4 };
    }
    const handles: SqlDatabase[] = [];
    const events: ChangeEvent[] = [];
    const connect = async () => {
      const database = await openSqlDatabase(spec);
      handles.push(database);
      await migrate(database);
      const feed = new LocalChangeFeed();
      return { store: open(database, feed), feed };
    };
    const first = await connect();
    first.feed.subscribe((event) => events.push(event));
    return {
      store: first.store,
      events,
      node: async () =>
        where === 'sqlite' ? open(handles[0]!, new LocalChangeFeed()) : (await connect()).store,
      async dispose() {
        for (const database of handles) await database.close();
        remove();
      },
    };
  };
}

for (const where of ['sqlite', 'postgres'] as const) {
  authStoreContract(
    `SqlAuthStore on ${where}`,
    onDatabase(where, (db, feed) => new SqlAuthStore(db, feed)),
  );
  managementStoreContract(
    `SqlManagementStore on ${where}`,
    onDatabase(where, (db, feed) => new SqlManagementStore(db, feed)),
  );
  webhookStoreContract(
    `SqlWebhookStore on ${where}`,
    onDatabase(where, (db) => new SqlWebhookStore(db)),
  );
}
