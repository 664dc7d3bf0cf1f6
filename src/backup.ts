import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { chmod, constants, copyFile, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqlDatabase } from './store/sql/database.js';
import { SqlGcStore } from './store/sql/gc-store.js';
import { migrate } from './store/sql/schema.js';

/** What a backup or restore copied. */
export interface BackupSummary {
  blobs: number;
  bytes: number;
}

/** Longest a backup may hold garbage collection back if it dies without releasing its lease. */
const LEASE_MS = 6 * 60 * 60 * 1000;
const DB = 'metadata.db';
/** The key that seals the database's secrets (src/auth/secret-box.ts): without it they cannot be read. */
const KEY_FILE = 'berth.key';

/**
 * Takes a consistent online copy of a data directory into `to`: SQLite's online backup of the
 * database, then every blob file the copied database records. While it runs, a lease in the database
 * stops garbage collection from deleting blobs (src/registry/gc.ts), so every blob the snapshot
 * names is still on disk when it is copied; blobs are immutable, so a copy taken later is the same.
 * Upload sessions are dropped from the copy: their partial files are not copied, clients start again.
 */
export async function backupDataDir(
  dataDir: string,
  to: string,
  /** The sealing key in use (`secretKeyFile`); the backup keeps it as its own `berth.key`. */
  keyFile = join(dataDir, KEY_FILE),
): Promise<BackupSummary> {
  await assertEmptyDir(to);
  // A backup holds password hashes and the sealing key: only Berth's own user may read it.
  await mkdir(to, { recursive: true, mode: 0o700 });
  await chmod(to, 0o700);
  await copyKeyFile(keyFile, join(to, KEY_FILE));
  // Migrated with every store's steps: Kysely refuses a file holding steps it was not told about.
  const database = await openSqlDatabase({ sqlitePath: join(dataDir, DB) });
  await migrate(database).catch(async (error: unknown) => {
    await database.close();
    throw error;
  });
  const leases = new SqlGcStore(database, true);
  const lease = randomUUID();
  try {
    await leases.takeBackupLease(lease, Date.now() + LEASE_MS);
    const source = new Database(join(dataDir, DB), { fileMustExist: true });
    try {
      await source.backup(join(to, DB));
    } finally {
      source.close();
    }
    await chmod(join(to, DB), 0o600);
    const copy = new Database(join(to, DB));
    try {
      copy.exec('DELETE FROM uploads; DELETE FROM backup_leases;');
      const summary = await copyBlobs(copy, join(dataDir, 'blobs'), join(to, 'blobs'));
      await writeFile(
        join(to, 'berth-backup.json'),
        `${JSON.stringify({ createdAt: new Date().toISOString(), ...summary }, null, 2)}\n`,
      );
      return summary;
    } finally {
      copy.close();
    }
  } finally {
    await leases.releaseBackupLease(lease);
    await leases.close();
  }
}

/**
 * Restores a backup into a new (absent or empty) data directory, after checking the database's
 * integrity and that every blob it records is present with its size.
 */
export async function restoreBackup(
  from: string,
  dataDir: string,
  /** Where the restored server reads its sealing key (`secretKeyFile`); never overwritten. */
  keyFile = join(dataDir, KEY_FILE),
): Promise<BackupSummary> {
  await assertEmptyDir(dataDir);
  const backup = new Database(join(from, DB), { fileMustExist: true, readonly: true });
  try {
    const check = backup.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new Error(`the backup's database is damaged: ${String(check)}`);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await chmod(dataDir, 0o700);
    await copyKeyFile(join(from, KEY_FILE), keyFile);
    await backup.backup(join(dataDir, DB));
    await chmod(join(dataDir, DB), 0o600);
    return await copyBlobs(backup, join(from, 'blobs'), join(dataDir, 'blobs'));
  } finally {
    backup.close();
  }
}

/**
 * Copies the sealing key file (0600), which a data directory from before sealed secrets may lack. An
 * existing destination is never overwritten: another key there would make the copy's secrets unreadable.
 */
async function copyKeyFile(from: string, to: string): Promise<void> {
  try {
    await copyFile(from, to, constants.COPYFILE_EXCL);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !existsSync(from)) return;
    // The same key already in place (nodes sharing one key file) is fine; another one is not.
    if (code === 'EEXIST' && (await readFile(from)).equals(await readFile(to))) return;
    if (code === 'EEXIST')
      throw new Error(`${to} holds another sealing key; the backup's secrets were sealed with ${from}`);
    throw error;
  }
  await chmod(to, 0o600);
}

/** Copies each blob the database records from one blob root to another, checking its size. */
async function copyBlobs(db: Database.Database, fromRoot: string, toRoot: string): Promise<BackupSummary> {
  const summary: BackupSummary = { blobs: 0, bytes: 0 };
  const rows = db
    .prepare('SELECT registry, digest, size FROM blobs ORDER BY registry, digest')
    .iterate() as IterableIterator<{ registry: string; digest: string; size: number }>;
  for (const row of rows) {
    const path = blobPath(row.registry, row.digest);
    const info = await stat(join(fromRoot, path)).catch(() => undefined);
    if (!info || info.size !== row.size)
      throw new Error(`blob ${row.digest} of registry ${row.registry} is missing or has the wrong size`);
    await mkdir(dirname(join(toRoot, path)), { recursive: true });
    await copyFile(join(fromRoot, path), join(toRoot, path));
    summary.blobs++;
    summary.bytes += row.size;
  }
  return summary;
}

/** The fs blob store's layout (src/store/fs-blob-store.ts). */
function blobPath(registry: string, digest: string): string {
  const [algorithm, encoded] = digest.split(':') as [string, string];
  return join(registry, 'blobs', algorithm, encoded.slice(0, 2), encoded);
}

async function assertEmptyDir(path: string): Promise<void> {
  const entries = await readdir(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  if (entries.length > 0) throw new Error(`${path} is not empty`);
}
