// Which stores a node runs on, chosen by `database` and `blobStore`: the embedded default (SQLite and
// the data directory), or the shared PostgreSQL database and Azure container of a scale-out deployment.

import { chmodSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { SecretBox } from './auth/secret-box.js';
import { ConfigError, nodeIdOf, type BerthConfig } from './config.js';
import type { SessionStore } from './auth/sessions.js';
import { openSqlDatabase, type SqlDatabase } from './store/sql/database.js';
import { migrate } from './store/sql/schema.js';
import { SqlSessionStore } from './store/sql/session-store.js';
import { InProcessBlobLocks, type BlobLocks } from './registry/blob-locks.js';
import { blobStoreSpec, databaseSpec } from './storage-settings.js';
import { LocalChangeFeed, type ChangeFeed } from './store/change-feed.js';
import { FsBlobStore } from './store/fs-blob-store.js';
import type { GcStore } from './store/gc-types.js';
import { SqlGcStore } from './store/sql/gc-store.js';
import { SqliteMetadataStore } from './store/sqlite-metadata-store.js';
import { AzureBlobStore } from './store/azure-blob-store.js';
import { PgChangeFeed } from './store/pg-change-feed.js';
import { PostgresMetadataStore } from './store/postgres-metadata-store.js';
import { SqlAuthStore } from './store/sql/auth-store.js';
import { SqlManagementStore } from './store/sql/management-store.js';
import { PgAdvisoryBlobLocks } from './store/sql/pg-blob-locks.js';
import { SqlWebhookStore } from './store/sql/webhook-store.js';
import type {
  AuthStore,
  BlobStore,
  DenialAuditStore,
  IdentityStore,
  IpSetStore,
  MetadataStore,
} from './store/types.js';
import type { WebhookStore } from './store/webhook-types.js';

/** The management store's three faces (identities, the denial log, IP sets), one object. */
export type ManagementStore = IdentityStore & DenialAuditStore & IpSetStore;

/** Everything a node keeps state in, opened and (with `close`) closed together. */
export interface NodeStores {
  /** `sqlite` for the embedded default, `postgres` when nodes share a database. */
  kind: 'sqlite' | 'postgres';
  /** This node's change feed: every cache subscribes to it, every store write publishes to it. */
  changes: ChangeFeed;
  meta: MetadataStore;
  gcStore: GcStore;
  management: ManagementStore;
  authStore: AuthStore;
  webhookStore: WebhookStore;
  blobs: BlobStore;
  /** The per-digest lock between commits and garbage collection, shared by every node that shares the data. */
  locks: BlobLocks;
  /** Seals secrets at rest; every node must hold the same key. */
  box: SecretBox;
  /** Portal sessions, in the database (so every node knows every session). */
  sessions: SessionStore;
  close(): Promise<void>;
}

/** Opens the stores `config` names; a setting that cannot be used fails here, naming the setting. */
export async function openNodeStores(config: BerthConfig, log: Logger): Promise<NodeStores> {
  const dbPath = join(config.dataDir, 'metadata.db');
  const database = setting(() => databaseSpec(config.database, dbPath));
  const blobSpec = setting(() => blobStoreSpec(config.blobStore, config.azureStorageConnectionString));
  const box = SecretBox.open(resolve(config.secretKeyFile ?? join(config.dataDir, 'berth.key')));
  const opened: { close(): Promise<void> | void }[] = [];
  try {
    const blobs =
      blobSpec.kind === 'azure'
        ? await settingAsync(() => AzureBlobStore.fromConfig(blobSpec))
        : new FsBlobStore(join(config.dataDir, 'blobs'));
    const parts =
      'postgresUrl' in database
        ? await openPostgres(database.postgresUrl, config, log, opened)
        : await openSqlite(dbPath, opened);
    if (parts.kind === 'postgres' && blobSpec.kind === 'filesystem')
      log.warn(
        { dataDir: config.dataDir },
        'blobs are in this node’s data directory: nodes sharing a database must share a blob store',
      );
    return { ...parts, blobs, box, close: closer(opened.reverse()) };
  } catch (error) {
    await closer(opened.reverse())();
    throw error;
  }
}

type DatabaseParts = Omit<NodeStores, 'blobs' | 'box' | 'close'>;

/** The embedded default: one SQLite file in the data directory, one process. */
async function openSqlite(
  dbPath: string,
  opened: { close(): Promise<void> | void }[],
): Promise<DatabaseParts> {
  const changes = new LocalChangeFeed();
  opened.push(changes);
  const meta = new SqliteMetadataStore(dbPath, changes);
  opened.push(meta);
  const sql = await openSqlDatabase({ sqlitePath: dbPath });
  opened.push(sql);
  await migrate(sql);
  // The GC, auth, management and webhook stores share one handle on the same file (Kysely over SQLite).
  const stores = sqlStores(sql, changes);
  for (const file of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
  return { kind: 'sqlite', changes, meta, ...stores, locks: new InProcessBlobLocks() };
}

/**
 * Scale-out: every store on the shared PostgreSQL database, publishing through the node's
 * LISTEN/NOTIFY feed. Migrations run under the migrator's advisory lock, so nodes may start together.
 */
async function openPostgres(
  url: string,
  config: BerthConfig,
  log: Logger,
  opened: { close(): Promise<void> | void }[],
): Promise<DatabaseParts> {
  const sql = await settingAsync(() => openSqlDatabase({ postgresUrl: url }));
  opened.push(sql);
  await migrate(sql);
  const changes = await settingAsync(() =>
    PgChangeFeed.start({
      url,
      nodeId: nodeIdOf(config),
      log: log.child({ component: 'change-feed' }),
      resyncIntervalMs: config.changeFeed.resyncIntervalSeconds * 1000,
    }),
  );
  opened.push(changes);
  const meta = new PostgresMetadataStore(sql, changes);
  const stores = sqlStores(sql, changes);
  const locks = new PgAdvisoryBlobLocks(url);
  opened.push(meta, stores.gcStore, stores.webhookStore, locks);
  return { kind: 'postgres', changes, meta, ...stores, locks };
}

/** The stores with one Kysely implementation for both dialects, on one database handle. */
function sqlStores(sql: SqlDatabase, changes: ChangeFeed) {
  return {
    gcStore: new SqlGcStore(sql),
    management: new SqlManagementStore(sql, changes),
    authStore: new SqlAuthStore(sql, changes),
    webhookStore: new SqlWebhookStore(sql),
    sessions: new SqlSessionStore(sql),
  };
}

/** Runs a step that fails only because of a setting, turning its failure into a ConfigError. */
async function settingAsync<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/** Runs a step that fails only because of a setting, turning its failure into a ConfigError. */
function setting<T>(step: () => T): T {
  try {
    return step();
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/** Closes each in turn, every one even when an earlier one fails. */
function closer(parts: { close(): Promise<void> | void }[]): () => Promise<void> {
  return async () => {
    for (const part of parts) await Promise.resolve(part.close()).catch(() => undefined);
  };
}
