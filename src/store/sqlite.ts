import Database from 'better-sqlite3';

/**
 * Opens the embedded database with the settings every Berth connection uses: WAL (readers never wait
 * for the writer), synchronous FULL (what we acknowledged survives a power cut, not just a crash),
 * and a busy timeout for the moments two connections write at once. Then applies `schema`.
 */
export function openSqlite(path: string, schema: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec(schema);
  return db;
}
