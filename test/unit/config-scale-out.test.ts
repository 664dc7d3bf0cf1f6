// The scale-out settings: where state lives (database, blobStore) and how a bad value is named.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig, nodeIdOf } from '../../src/config.js';
import { connectionStringAccount } from '../../src/storage-settings.js';

const AZURITE =
  'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;';

test('absent settings keep the embedded default; set ones are read from the environment', () => {
  const embedded = loadConfig({});
  assert.equal(embedded.database, undefined);
  assert.equal(embedded.blobStore, undefined);
  assert.equal(embedded.blobRedirect, false);
  assert.equal(embedded.changeFeed.resyncIntervalSeconds, 30);
  assert.match(nodeIdOf(embedded), new RegExp(`-${process.pid}$`));
  const scaled = loadConfig({
    BERTH_DATABASE_URL: 'postgres://berth:secret@db.internal:5432/berth',
    BERTH_BLOB_STORE: 'azure://devstoreaccount1/berth-blobs',
    BERTH_AZURE_STORAGE_CONNECTION_STRING: AZURITE,
    BERTH_BLOB_REDIRECT: 'true',
    BERTH_NODE_ID: 'node-a',
    BERTH_SECRET_KEY_FILE: '/etc/berth/berth.key',
    BERTH_CHANGE_FEED_RESYNC_SECONDS: '5',
  });
  assert.equal(scaled.database, 'postgres://berth:secret@db.internal:5432/berth');
  assert.equal(scaled.blobStore, 'azure://devstoreaccount1/berth-blobs');
  assert.equal(scaled.blobRedirect, true);
  assert.equal(nodeIdOf(scaled), 'node-a');
  assert.equal(scaled.secretKeyFile, '/etc/berth/berth.key');
  assert.equal(scaled.changeFeed.resyncIntervalSeconds, 5);
});

test('a database URL of another scheme, or naming no database, is refused naming the setting', () => {
  assert.throws(
    () => loadConfig({ BERTH_DATABASE_URL: 'mysql://root@localhost/berth' }),
    (error: unknown) =>
      error instanceof ConfigError &&
      /BERTH_DATABASE_URL/.test(error.message) &&
      /unsupported scheme 'mysql:'/.test(error.message),
  );
  assert.throws(() => loadConfig({ BERTH_DATABASE_URL: 'postgres://localhost:5432' }), /names no database/);
  assert.throws(() => loadConfig({ BERTH_DATABASE_URL: 'not a url' }), /BERTH_DATABASE_URL.*not a URL/);
});

test('an azure blob store needs a connection string for the same account', () => {
  assert.throws(
    () => loadConfig({ BERTH_BLOB_STORE: 'azure://devstoreaccount1/blobs' }),
    /BERTH_BLOB_STORE.*needs BERTH_AZURE_STORAGE_CONNECTION_STRING/,
  );
  assert.throws(
    () =>
      loadConfig({
        BERTH_BLOB_STORE: 'azure://prodaccount/blobs',
        BERTH_AZURE_STORAGE_CONNECTION_STRING: AZURITE,
      }),
    (error: unknown) =>
      error instanceof ConfigError &&
      /account 'prodaccount'/.test(error.message) &&
      /is for 'devstoreaccount1'/.test(error.message) &&
      !error.message.includes('Eby8'),
  );
  assert.throws(
    () => loadConfig({ BERTH_BLOB_STORE: 's3://bucket' }),
    /BERTH_BLOB_STORE.*azure:\/\/<account>\/<container>/,
  );
  assert.throws(
    () =>
      loadConfig({
        BERTH_BLOB_STORE: 'azure://devstoreaccount1/Bad_Name',
        BERTH_AZURE_STORAGE_CONNECTION_STRING: AZURITE,
      }),
    /not a container name/,
  );
  assert.throws(() => loadConfig({ BERTH_BLOB_REDIRECT: 'true' }), /BERTH_BLOB_REDIRECT.*azure/);
  assert.throws(
    () => loadConfig({ BERTH_BLOB_REDIRECT: 'maybe' }),
    /BERTH_BLOB_REDIRECT must be true or false/,
  );
  assert.throws(() => loadConfig({ BERTH_NODE_ID: 'a node' }), /BERTH_NODE_ID/);
  assert.throws(() => loadConfig({ BERTH_CHANGE_FEED_RESYNC_SECONDS: '0' }), /resyncIntervalSeconds/);
});

test('the account of a connection string comes from its name, its endpoint, or the emulator shortcut', () => {
  assert.equal(connectionStringAccount(AZURITE), 'devstoreaccount1');
  assert.equal(connectionStringAccount('UseDevelopmentStorage=true'), 'devstoreaccount1');
  assert.equal(
    connectionStringAccount(
      'BlobEndpoint=https://prodaccount.blob.core.windows.net/;SharedAccessSignature=sv=x',
    ),
    'prodaccount',
  );
  assert.equal(connectionStringAccount('SharedAccessSignature=sv=x'), undefined);
});
