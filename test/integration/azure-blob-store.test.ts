import { BlobServiceClient } from '@azure/storage-blob';
import { AzureBlobStore } from '../../src/store/azure-blob-store.js';
import { azuriteContainer } from '../helpers/azurite.js';
import { blobStoreContract } from '../helpers/blob-store-contract.js';

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
