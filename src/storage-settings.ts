// The scale-out settings that choose where state lives: `database` and `blobStore`. Parsed here, once,
// so a bad value stops start-up with a message naming the setting before anything is opened.

import { DatabaseConfigError, parsePostgresUrl, type SqlDatabaseSpec } from './store/sql/database.js';

/** Where blob bytes live. */
export type BlobStoreSpec =
  { kind: 'filesystem' } | { kind: 'azure'; account: string; container: string; connectionString: string };

const BLOB_SETTING = 'blobStore (BERTH_BLOB_STORE)';
const CONNECTION_SETTING = 'BERTH_AZURE_STORAGE_CONNECTION_STRING';
/** Azurite's and the Azure SDK's name for the local development account. */
const DEVELOPMENT_ACCOUNT = 'devstoreaccount1';

/** The database a node uses: the SQLite file in the data directory unless a PostgreSQL URL is set. */
export function databaseSpec(database: string | undefined, sqlitePath: string): SqlDatabaseSpec {
  if (database === undefined) return { sqlitePath };
  try {
    parsePostgresUrl(database);
  } catch (error) {
    if (error instanceof DatabaseConfigError) throw new Error(error.message);
    throw error;
  }
  return { postgresUrl: database };
}

/**
 * The blob store a node uses: `azure://<account>/<container>` needs a connection string for that
 * same account (a mismatch would write one account's blobs while the operator watches another).
 */
export function blobStoreSpec(
  blobStore: string | undefined,
  connectionString: string | undefined,
): BlobStoreSpec {
  if (blobStore === undefined) return { kind: 'filesystem' };
  const match = /^azure:\/\/([^/]+)\/([^/]+)\/?$/.exec(blobStore);
  if (!match)
    throw new Error(
      `${BLOB_SETTING}: '${blobStore}' is not a blob store; expected azure://<account>/<container> (or unset for the data directory)`,
    );
  const [, account, container] = match as unknown as [string, string, string];
  if (!/^[a-z0-9]{3,24}$/.test(account))
    throw new Error(
      `${BLOB_SETTING}: '${account}' is not a storage account name (3-24 lower-case letters and digits)`,
    );
  if (!/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/.test(container))
    throw new Error(
      `${BLOB_SETTING}: '${container}' is not a container name (3-63 lower-case letters, digits and single hyphens)`,
    );
  if (!connectionString)
    throw new Error(`${BLOB_SETTING} '${blobStore}' needs ${CONNECTION_SETTING} (for account '${account}')`);
  const named = connectionStringAccount(connectionString);
  if (named === undefined)
    throw new Error(`${CONNECTION_SETTING}: names no account (AccountName=… or BlobEndpoint=…)`);
  if (named !== account)
    throw new Error(
      `${BLOB_SETTING} names the account '${account}' but ${CONNECTION_SETTING} is for '${named}'`,
    );
  return { kind: 'azure', account, container, connectionString };
}

/** The storage account a connection string is for (its password is never part of an error). */
export function connectionStringAccount(connectionString: string): string | undefined {
  const parts = new Map<string, string>();
  for (const part of connectionString.split(';')) {
    const at = part.indexOf('=');
    if (at > 0) parts.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  if (parts.get('usedevelopmentstorage')?.toLowerCase() === 'true') return DEVELOPMENT_ACCOUNT;
  const name = parts.get('accountname');
  if (name) return name;
  const endpoint = parts.get('blobendpoint');
  if (!endpoint) return undefined;
  try {
    const url = new URL(endpoint);
    // `https://<account>.blob.core.windows.net`, or an emulator's `http://127.0.0.1:10000/<account>`.
    const host = /^([a-z0-9]+)\.blob\./.exec(url.hostname);
    if (host) return host[1];
    return url.pathname.split('/').find(Boolean);
  } catch {
    return undefined;
  }
}
