// Which stores a node runs on, chosen by `database` and `blobStore`: the embedded default (SQLite and
// the data directory), or the shared PostgreSQL database and Azure container of a scale-out deployment.

import { chmodSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { SecretBox } from './auth/secret-box.js';
import { ConfigError, type BerthConfig } from './config.js';
import type { SessionStore } from './auth/sessions.js';
import { openSqlDatabase } from './store/sql/database.js';
import { migrate } from './store/sql/migrations.js';
import { SqlSessionStore } from './store/sql/session-store.js';
import { InProcessBlobLocks, type BlobLocks } from './registry/blob-locks.js';
import { blobStoreSpec, databaseSpec } from './storage-settings.js';
import { LocalChangeFeed, type ChangeFeed } from './store/change-feed.js';
import { FsBlobStore } from './store/fs-blob-store.js';
import type { GcStore } from './store/gc-types.js';
import { SqliteAuthStore } from './store/sqlite-auth-store.js';
import { SqliteGcStore } from './store/sqlite-gc-store.js';
import { SqliteManagementStore } from './store/sqlite-management-store.js';
import { SqliteMetadataStore } from './store/sqlite-metadata-store.js';
import { SqliteWebhookStore } from './store/sqlite-webhook-store.js';
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
export type ManagementStore = IdentityStore & DenialAuditStore & IpSetStore & { close(): Promise<void> };

/** Everything a node keeps state in, opened and (with `close`) closed together. */
export interface NodeStores {
  /** `sqlite` for the embedded default, `postgres` when nodes share a database. */
  kind: 'sqlite' | 'postgres';
  /** This node's change feed: every cache subscribes to it, every store write publishes to it. */
  changes: ChangeFeed;
  meta: MetadataStore;
  gcStore: GcStore;
  management: ManagementStore;
  authStore: AuthStore & { close(): Promise<void> };
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
  if ('postgresUrl' in database) {
    void log;
    throw new Error('database (BERTH_DATABASE_URL): PostgreSQL is not wired in this build yet');
  }
  const changes = new LocalChangeFeed();
  const meta = new SqliteMetadataStore(dbPath, changes);
  const sql = await openSqlDatabase(database);
  await migrate(sql);
  // After the metadata store: these read the registry tables that store creates.
  const gcStore = new SqliteGcStore(dbPath);
  const management = new SqliteManagementStore(dbPath);
  const authStore = new SqliteAuthStore(dbPath);
  const webhookStore = new SqliteWebhookStore(dbPath);
  for (const file of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
  const blobs = blobSpec.kind === 'filesystem' ? new FsBlobStore(join(config.dataDir, 'blobs')) : undefined;
  if (!blobs) throw new Error('blobStore (BERTH_BLOB_STORE): Azure is not wired in this build yet');
  return {
    kind: 'sqlite',
    changes,
    meta,
    gcStore,
    management,
    authStore,
    webhookStore,
    blobs,
    locks: new InProcessBlobLocks(),
    box,
    sessions: new SqlSessionStore(sql),
    close: closer([meta, management, authStore, gcStore, webhookStore, sql, changes]),
  };
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
