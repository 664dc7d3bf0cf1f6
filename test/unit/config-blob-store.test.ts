import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, azureBlobStoreSettings, loadConfig } from '../../src/config.js';

const CS = 'DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=a2V5;EndpointSuffix=core.windows.net';

test('blobStore, BERTH_AZURE_STORAGE_CONNECTION_STRING and blobRedirect come from the environment', () => {
  const config = loadConfig({
    BERTH_BLOB_STORE: 'azure://acme/layers',
    BERTH_AZURE_STORAGE_CONNECTION_STRING: CS,
    BERTH_BLOB_REDIRECT: 'true',
  });
  assert.equal(config.blobRedirect, true);
  assert.deepEqual(azureBlobStoreSettings(config), {
    account: 'acme',
    container: 'layers',
    connectionString: CS,
  });
  const plain = loadConfig({});
  assert.equal(plain.blobRedirect, false);
  assert.equal(azureBlobStoreSettings(plain), undefined, 'no blobStore: the data directory');
  assert.throws(() => loadConfig({ BERTH_BLOB_REDIRECT: 'sometimes' }), /BERTH_BLOB_REDIRECT/);
});

test('bad blob store settings fail with a message naming the setting', () => {
  const settings = (env: Record<string, string>) => azureBlobStoreSettings(loadConfig(env));
  assert.throws(() => settings({ BERTH_BLOB_STORE: 's3://bucket' }), /blobStore \(BERTH_BLOB_STORE\)/);
  assert.throws(() => settings({ BERTH_BLOB_STORE: 'azure://acme/Bad_Name' }), ConfigError);
  assert.throws(() => settings({ BERTH_BLOB_STORE: 'azure://acme/a--b' }), ConfigError);
  assert.throws(
    () => settings({ BERTH_BLOB_STORE: 'azure://acme/layers' }),
    /needs BERTH_AZURE_STORAGE_CONNECTION_STRING/,
  );
  assert.throws(
    () => settings({ BERTH_BLOB_STORE: 'azure://other/layers', BERTH_AZURE_STORAGE_CONNECTION_STRING: CS }),
    /names the account 'other'.*is for 'acme'/,
  );
});
