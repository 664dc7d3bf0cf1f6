import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlobServiceClient } from '@azure/storage-blob';
import { AzureBlobStore } from '../../src/store/azure-blob-store.js';
import { azuriteContainer } from '../helpers/azurite.js';
import { blobStoreContract } from '../helpers/blob-store-contract.js';
import { freePort } from '../helpers/net.js';

// The same contract as the filesystem store (store-contract.test.ts), on Azurite: one fresh container
// per test, removed afterwards.
blobStoreContract('AzureBlobStore', async (t) => {
  const target = await azuriteContainer(t);
  if (!target) return undefined;
  const store = await AzureBlobStore.fromConfig(target);
  return {
    store,
    async dispose() {
      await BlobServiceClient.fromConnectionString(target.connectionString)
        .getContainerClient(target.container)
        .deleteIfExists();
    },
  };
});

test('start-up fails fast, naming the settings, when the account refuses the key or cannot be reached', async (t) => {
  const target = await azuriteContainer(t);
  if (!target) return;
  const wrongKey = target.connectionString.replace(
    /AccountKey=[^;]+/,
    `AccountKey=${Buffer.from('wrong').toString('base64')}`,
  );
  await assert.rejects(
    AzureBlobStore.fromConfig({ connectionString: wrongKey, container: target.container }),
    /BERTH_AZURE_STORAGE_CONNECTION_STRING: HTTP 403/,
  );
  const port = await freePort();
  const nowhere = target.connectionString.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${port}`);
  await assert.rejects(
    AzureBlobStore.fromConfig({ connectionString: nowhere, container: target.container }),
    /blobStore \/ BERTH_BLOB_STORE.*BERTH_AZURE_STORAGE_CONNECTION_STRING/,
  );
  await assert.rejects(
    AzureBlobStore.fromConfig({ connectionString: 'not a connection string', container: 'x' }),
    /BERTH_AZURE_STORAGE_CONNECTION_STRING is not a usable connection string/,
  );
});
