import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteAuthStore } from '../../src/store/sqlite-auth-store.js';
import { SqliteManagementStore } from '../../src/store/sqlite-management-store.js';
import { SqliteWebhookStore } from '../../src/store/sqlite-webhook-store.js';
import { authStoreContract, type SharedStoreFactory } from '../helpers/auth-store-contract.js';
import { managementStoreContract } from '../helpers/management-store-contract.js';
import { webhookStoreContract } from '../helpers/webhook-store-contract.js';

function sqlite<T extends { close(): Promise<void> }>(open: (path: string) => T): SharedStoreFactory<T> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-contract-'));
    const path = join(dir, 'metadata.db');
    const opened: T[] = [open(path)];
    return {
      store: opened[0]!,
      async node() {
        const store = open(path);
        opened.push(store);
        return store;
      },
      async dispose() {
        for (const store of opened) await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  };
}

authStoreContract(
  'SqliteAuthStore',
  sqlite((path) => new SqliteAuthStore(path)),
);
managementStoreContract(
  'SqliteManagementStore',
  sqlite((path) => new SqliteManagementStore(path)),
);
webhookStoreContract(
  'SqliteWebhookStore',
  sqlite((path) => new SqliteWebhookStore(path)),
);
