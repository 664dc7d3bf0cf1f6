// Scale-out settings that cannot be used stop start-up with a message naming the setting: an
// unreachable PostgreSQL, an unreachable blob store, and a node whose key file is not the others'.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { ConfigError } from '../../src/config.js';
import { startBerth } from '../../src/server.js';
import { AZURITE_ACCOUNT, azuriteConnectionString, azuriteContainer } from '../helpers/azurite.js';
import { freePort } from '../helpers/net.js';
import { postgresDatabase } from '../helpers/postgres.js';
import { testConfig, type ConfigOverrides } from '../helpers/server.js';

function start(t: { after(fn: () => void): void }, overrides: ConfigOverrides) {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-scale-config-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  return startBerth(testConfig(overrides, dataDir, 'silent'), pino({ level: 'silent' }));
}

test('an unreachable PostgreSQL stops start-up naming BERTH_DATABASE_URL, without its password', async (t) => {
  const port = await freePort();
  await assert.rejects(
    start(t, { database: `postgres://berth:hunter2@127.0.0.1:${port}/berth` }),
    (error: unknown) =>
      error instanceof ConfigError &&
      /database \(BERTH_DATABASE_URL\): cannot connect to PostgreSQL at 127\.0\.0\.1:\d+\/berth/.test(
        error.message,
      ) &&
      !error.message.includes('hunter2'),
  );
});

test('an unreachable blob store stops start-up naming blobStore', async (t) => {
  const port = await freePort();
  await assert.rejects(
    start(t, {
      blobStore: `azure://${AZURITE_ACCOUNT}/blobs`,
      azureStorageConnectionString: azuriteConnectionString(port),
    }),
    (error: unknown) => error instanceof ConfigError && /blobStore \/ BERTH_BLOB_STORE/.test(error.message),
  );
});

test('a node whose key file differs from the other nodes’ stops at start with a clear message', async (t) => {
  const database = await postgresDatabase(t);
  if (!database) return;
  const azure = await azuriteContainer(t);
  if (!azure) return;
  const shared = {
    database,
    blobStore: `azure://${AZURITE_ACCOUNT}/${azure.container}`,
    azureStorageConnectionString: azure.connectionString,
  };
  const keys = mkdtempSync(join(tmpdir(), 'berth-keys-'));
  t.after(() => rmSync(keys, { recursive: true, force: true }));
  const first = await start(t, { ...shared, nodeId: 'node-1', secretKeyFile: join(keys, 'one.key') });
  t.after(() => first.close());
  await assert.rejects(
    start(t, { ...shared, nodeId: 'node-2', secretKeyFile: join(keys, 'two.key') }),
    (error: unknown) =>
      error instanceof ConfigError &&
      /cannot be decrypted/.test(error.message) &&
      /BERTH_SECRET_KEY_FILE/.test(error.message),
  );
  // With the same key file the second node starts and serves.
  const second = await start(t, { ...shared, nodeId: 'node-2', secretKeyFile: join(keys, 'one.key') });
  t.after(() => second.close());
  const res = await fetch(`${second.urls[0]}/v2/`);
  assert.equal(res.status, 401, 'the second node answers with its sign-in challenge');
});
