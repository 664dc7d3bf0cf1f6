import type Database from 'better-sqlite3';
import { registryFromRow, uploadFromRow } from './metadata-rows.js';
import type { MetadataTables } from './sql/metadata-schema.js';
import { openSqlite } from './sqlite.js';
import { LocalChangeFeed, type ChangeFeed } from './change-feed.js';
import type {
  ChangeEvent,
  ManifestRecord,
  MetadataStore,
  PageQuery,
  ReferrerDescriptor,
  RegistryRecord,
  UploadSession,
} from './types.js';

type RegistryRow = MetadataTables['registries'];
type UploadRow = MetadataTables['uploads'];

const SCHEMA = `
CREATE TABLE IF NOT EXISTS registries (
  name TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  properties TEXT NOT NULL,
  version INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS repositories (
  registry TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (registry, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs (
  registry TEXT NOT NULL,
  digest TEXT NOT NULL,
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (registry, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob_links (
  registry TEXT NOT NULL,
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  linked_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (registry, repository, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manifests (
  registry TEXT NOT NULL,
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  content BLOB NOT NULL,
  subject TEXT,
  artifact_type TEXT,
  annotations TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (registry, repository, digest)
);
CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests (registry, repository, subject) WHERE subject IS NOT NULL;
CREATE TABLE IF NOT EXISTS tags (
  registry TEXT NOT NULL,
  repository TEXT NOT NULL,
  tag TEXT NOT NULL,
  digest TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (registry, repository, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_digest ON tags (registry, repository, digest);
CREATE TABLE IF NOT EXISTS uploads (
  registry TEXT NOT NULL,
  id TEXT NOT NULL,
  repository TEXT NOT NULL,
  offset INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (registry, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uploads_by_age ON uploads (updated_at);
`;

/** Added after the first release: created after the migration, because the column may be new. */
const LINK_INDEX = 'CREATE INDEX IF NOT EXISTS blob_links_by_digest ON blob_links (registry, digest);';

interface ManifestRow {
  digest: string;
  media_type: string;
  size: number;
  content: Buffer;
  subject: string | null;
  artifact_type: string | null;
  annotations: string | null;
}

/**
 * The embedded metadata store: one SQLite file, WAL mode, every statement prepared once. Transactions
 * are IMMEDIATE: another process (an online backup) may write to the file, and a transaction that read
 * first could not then take the write lock without failing with SQLITE_BUSY.
 */
export class SqliteMetadataStore implements MetadataStore {
  private readonly db: Database.Database;
  private readonly stmt;

  /** `feed` is the node's change feed; the store publishes its registry and manifest changes there. */
  constructor(
    path: string,
    private readonly feed: ChangeFeed = new LocalChangeFeed(),
  ) {
    this.db = openSqlite(path, SCHEMA);
    addLinkTimes(this.db);
    const db = this.db;
    // Databases from before versioned registry records gain the column in place (every record at 1).
    const columns = db.prepare('PRAGMA table_info(registries)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'version'))
      db.exec('ALTER TABLE registries ADD COLUMN version INTEGER NOT NULL DEFAULT 1');
    // Added after the first release: the digest an upload is being committed as (crash recovery).
    const uploadColumns = db.prepare('PRAGMA table_info(uploads)').all() as { name: string }[];
    if (!uploadColumns.some((column) => column.name === 'committing'))
      db.exec('ALTER TABLE uploads ADD COLUMN committing TEXT');
    this.stmt = {
      getRegistry: db.prepare('SELECT name, created_at, properties, version FROM registries WHERE name = ?'),
      listRegistries: db.prepare(
        'SELECT name, created_at, properties, version FROM registries ORDER BY name',
      ),
      insertRegistry: db.prepare(
        'INSERT INTO registries (name, created_at, properties) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      updateRegistry: db.prepare(
        'UPDATE registries SET properties = ?, version = version + 1 WHERE name = ? AND (? IS NULL OR version = ?)',
      ),
      repoExists: db.prepare('SELECT 1 FROM repositories WHERE registry = ? AND name = ?'),
      insertRepo: db.prepare(
        'INSERT INTO repositories (registry, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      listRepos: db.prepare(
        'SELECT name FROM repositories WHERE registry = ? AND name > ? ORDER BY name LIMIT ?',
      ),
      listTags: db.prepare(
        'SELECT tag FROM tags WHERE registry = ? AND repository = ? AND tag > ? ORDER BY tag LIMIT ?',
      ),
      resolveTag: db.prepare('SELECT digest FROM tags WHERE registry = ? AND repository = ? AND tag = ?'),
      upsertTag: db.prepare(
        `INSERT INTO tags (registry, repository, tag, digest, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (registry, repository, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
      ),
      deleteTag: db.prepare('DELETE FROM tags WHERE registry = ? AND repository = ? AND tag = ?'),
      deleteTagsOf: db.prepare('DELETE FROM tags WHERE registry = ? AND repository = ? AND digest = ?'),
      getManifest: db.prepare(
        `SELECT digest, media_type, size, content, subject, artifact_type, annotations
         FROM manifests WHERE registry = ? AND repository = ? AND digest = ?`,
      ),
      manifestExists: db.prepare(
        'SELECT 1 FROM manifests WHERE registry = ? AND repository = ? AND digest = ?',
      ),
      insertManifest: db.prepare(
        `INSERT INTO manifests (registry, repository, digest, media_type, size, content, subject, artifact_type, annotations, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
      deleteManifest: db.prepare(
        'DELETE FROM manifests WHERE registry = ? AND repository = ? AND digest = ?',
      ),
      referrers: db.prepare(
        `SELECT digest, media_type, size, artifact_type, annotations FROM manifests
         WHERE registry = ? AND repository = ? AND subject = ? ORDER BY created_at, digest`,
      ),
      referrersByType: db.prepare(
        `SELECT digest, media_type, size, artifact_type, annotations FROM manifests
         WHERE registry = ? AND repository = ? AND subject = ? AND artifact_type = ? ORDER BY created_at, digest`,
      ),
      linkedBlob: db.prepare(
        `SELECT b.size AS size FROM blob_links l JOIN blobs b ON b.registry = l.registry AND b.digest = l.digest
         WHERE l.registry = ? AND l.repository = ? AND l.digest = ?`,
      ),
      insertBlob: db.prepare(
        'INSERT INTO blobs (registry, digest, size, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      // A link's time is refreshed by every push or mount: garbage collection's grace period counts
      // from the last time a client put the blob there, not from when it first arrived.
      insertLink: db.prepare(
        `INSERT INTO blob_links (registry, repository, digest, linked_at) VALUES (?, ?, ?, ?)
         ON CONFLICT DO UPDATE SET linked_at = excluded.linked_at`,
      ),
      deleteLink: db.prepare('DELETE FROM blob_links WHERE registry = ? AND repository = ? AND digest = ?'),
      // Only a blob some repository still links is known registry-wide: an unlinked one is deleted for
      // clients at once, even before garbage collection removes its bytes.
      findBlob: db.prepare(
        `SELECT size FROM blobs b WHERE registry = ? AND digest = ?
         AND EXISTS (SELECT 1 FROM blob_links l WHERE l.registry = b.registry AND l.digest = b.digest)`,
      ),
      insertUpload: db.prepare(
        'INSERT INTO uploads (registry, id, repository, offset, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      getUpload: db.prepare('SELECT * FROM uploads WHERE registry = ? AND id = ?'),
      advanceUpload: db.prepare(
        'UPDATE uploads SET offset = ?, updated_at = ? WHERE registry = ? AND id = ? AND offset = ?',
      ),
      deleteUpload: db.prepare('DELETE FROM uploads WHERE registry = ? AND id = ?'),
      staleUploads: db.prepare('SELECT * FROM uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?'),
      markCommitting: db.prepare('UPDATE uploads SET committing = ? WHERE registry = ? AND id = ?'),
      registryUploads: db.prepare('SELECT * FROM uploads WHERE registry = ? ORDER BY id LIMIT ?'),
      countUploads: db.prepare('SELECT COUNT(*) AS n FROM uploads WHERE registry = ?'),
    };
  }

  async getRegistry(name: string): Promise<RegistryRecord | undefined> {
    const row = this.stmt.getRegistry.get(name) as RegistryRow | undefined;
    return row && registryFromRow(row);
  }

  async listRegistries(): Promise<RegistryRecord[]> {
    return (this.stmt.listRegistries.all() as RegistryRow[]).map(registryFromRow);
  }

  async createRegistry(record: RegistryRecord): Promise<boolean> {
    const info = this.stmt.insertRegistry.run(
      record.name,
      record.createdAt.getTime(),
      JSON.stringify(record.properties),
    );
    if (info.changes > 0) this.emit({ kind: 'registry', registry: record.name, change: 'created' });
    return info.changes > 0;
  }

  async updateRegistry(
    name: string,
    properties: Record<string, unknown>,
    expectedVersion?: number,
  ): Promise<boolean> {
    const expected = expectedVersion ?? null;
    const info = this.stmt.updateRegistry.run(JSON.stringify(properties), name, expected, expected);
    if (info.changes > 0) this.emit({ kind: 'registry', registry: name, change: 'updated' });
    return info.changes > 0;
  }

  async deleteRegistry(name: string, expectedVersion?: number): Promise<boolean> {
    const removed = this.db
      .transaction(() => {
        if (expectedVersion !== undefined) {
          const row = this.stmt.getRegistry.get(name) as RegistryRow | undefined;
          if (!row || row.version !== expectedVersion) return false;
        }
        for (const table of ['repositories', 'blobs', 'blob_links', 'manifests', 'tags', 'uploads']) {
          this.db.prepare(`DELETE FROM ${table} WHERE registry = ?`).run(name);
        }
        return this.db.prepare('DELETE FROM registries WHERE name = ?').run(name).changes > 0;
      })
      .immediate();
    if (removed) this.emit({ kind: 'registry', registry: name, change: 'deleted' });
    return removed;
  }

  onChange(listener: (event: ChangeEvent) => void): () => void {
    return this.feed.subscribe(listener);
  }

  async repositoryExists(registry: string, repository: string): Promise<boolean> {
    return this.stmt.repoExists.get(registry, repository) !== undefined;
  }

  async listRepositories(registry: string, page: PageQuery): Promise<string[]> {
    return (this.stmt.listRepos.all(registry, page.last ?? '', page.limit) as { name: string }[]).map(
      (r) => r.name,
    );
  }

  async listTags(registry: string, repository: string, page: PageQuery): Promise<string[]> {
    return (
      this.stmt.listTags.all(registry, repository, page.last ?? '', page.limit) as { tag: string }[]
    ).map((r) => r.tag);
  }

  async repositoryStats(
    registry: string,
    repository: string,
  ): Promise<{ tagCount: number; manifestCount: number }> {
    const count = (table: string) =>
      (
        this.db
          .prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE registry = ? AND repository = ?`)
          .get(registry, repository) as {
          n: number;
        }
      ).n;
    return { tagCount: count('tags'), manifestCount: count('manifests') };
  }

  async deleteRepository(registry: string, repository: string): Promise<boolean> {
    const removed = this.db
      .transaction(() => {
        for (const table of ['tags', 'manifests', 'blob_links']) {
          this.db
            .prepare(`DELETE FROM ${table} WHERE registry = ? AND repository = ?`)
            .run(registry, repository);
        }
        return (
          this.db
            .prepare('DELETE FROM repositories WHERE registry = ? AND name = ?')
            .run(registry, repository).changes > 0
        );
      })
      .immediate();
    if (removed) this.emit({ kind: 'manifest', registry, repository });
    return removed;
  }

  async resolveTag(registry: string, repository: string, tag: string): Promise<string | undefined> {
    return (this.stmt.resolveTag.get(registry, repository, tag) as { digest: string } | undefined)?.digest;
  }

  async deleteTag(registry: string, repository: string, tag: string): Promise<boolean> {
    const removed = this.stmt.deleteTag.run(registry, repository, tag).changes > 0;
    if (removed) this.emit({ kind: 'manifest', registry, repository, tag });
    return removed;
  }

  async getManifest(
    registry: string,
    repository: string,
    digest: string,
  ): Promise<ManifestRecord | undefined> {
    const row = this.stmt.getManifest.get(registry, repository, digest) as ManifestRow | undefined;
    if (!row) return undefined;
    return {
      digest: row.digest,
      mediaType: row.media_type,
      size: row.size,
      content: row.content,
      subject: row.subject ?? undefined,
      artifactType: row.artifact_type ?? undefined,
      annotations: row.annotations ? (JSON.parse(row.annotations) as Record<string, string>) : undefined,
    };
  }

  async existingManifests(registry: string, repository: string, digests: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const digest of digests) {
      if (this.stmt.manifestExists.get(registry, repository, digest) !== undefined) found.add(digest);
    }
    return found;
  }

  async putManifest(
    registry: string,
    repository: string,
    manifest: ManifestRecord,
    tag?: string,
    blobs: readonly string[] = [],
    children: readonly string[] = [],
  ): Promise<string | undefined> {
    const now = Date.now();
    const vanished = this.db
      .transaction(() => {
        // Re-checked inside the write transaction: garbage collection drops links (and retention deletes
        // untagged manifests) in transactions of their own, so what was seen before may be gone now
        // (see src/registry/gc.ts).
        for (const digest of blobs) {
          if (this.stmt.linkedBlob.get(registry, repository, digest) === undefined) return digest;
        }
        for (const digest of children) {
          if (this.stmt.manifestExists.get(registry, repository, digest) === undefined) return digest;
        }
        this.stmt.insertRepo.run(registry, repository, now);
        this.stmt.insertManifest.run(
          registry,
          repository,
          manifest.digest,
          manifest.mediaType,
          manifest.size,
          manifest.content,
          manifest.subject ?? null,
          manifest.artifactType ?? null,
          manifest.annotations ? JSON.stringify(manifest.annotations) : null,
          now,
        );
        if (tag !== undefined) this.stmt.upsertTag.run(registry, repository, tag, manifest.digest, now);
        return undefined;
      })
      .immediate();
    if (vanished === undefined)
      this.emit({
        kind: 'manifest',
        registry,
        repository,
        digest: manifest.digest,
        ...(tag !== undefined ? { tag } : {}),
      });
    return vanished;
  }

  async deleteManifest(registry: string, repository: string, digest: string): Promise<boolean> {
    const removed = this.db
      .transaction(() => {
        const removed = this.stmt.deleteManifest.run(registry, repository, digest).changes > 0;
        if (removed) this.stmt.deleteTagsOf.run(registry, repository, digest);
        return removed;
      })
      .immediate();
    // The manifest's tags went with it: listeners drop every tag that resolved to the digest.
    if (removed) this.emit({ kind: 'manifest', registry, repository, digest });
    return removed;
  }

  async listReferrers(
    registry: string,
    repository: string,
    subject: string,
    artifactType?: string,
  ): Promise<ReferrerDescriptor[]> {
    const rows = (
      artifactType === undefined
        ? this.stmt.referrers.all(registry, repository, subject)
        : this.stmt.referrersByType.all(registry, repository, subject, artifactType)
    ) as Omit<ManifestRow, 'content' | 'subject'>[];
    return rows.map((row) => ({
      mediaType: row.media_type,
      digest: row.digest,
      size: row.size,
      artifactType: row.artifact_type ?? undefined,
      annotations: row.annotations ? (JSON.parse(row.annotations) as Record<string, string>) : undefined,
    }));
  }

  async linkedBlob(
    registry: string,
    repository: string,
    digest: string,
  ): Promise<{ size: number } | undefined> {
    return this.stmt.linkedBlob.get(registry, repository, digest) as { size: number } | undefined;
  }

  async linkedBlobs(registry: string, repository: string, digests: string[]): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    for (const digest of digests) {
      const row = this.stmt.linkedBlob.get(registry, repository, digest) as { size: number } | undefined;
      if (row) found.set(digest, row.size);
    }
    return found;
  }

  async linkBlob(registry: string, repository: string, digest: string, size: number): Promise<void> {
    const now = Date.now();
    this.db
      .transaction(() => {
        this.stmt.insertRepo.run(registry, repository, now);
        this.stmt.insertBlob.run(registry, digest, size, now);
        this.stmt.insertLink.run(registry, repository, digest, now);
      })
      .immediate();
  }

  async unlinkBlob(registry: string, repository: string, digest: string): Promise<boolean> {
    return this.stmt.deleteLink.run(registry, repository, digest).changes > 0;
  }

  async registryUsage(registry: string): Promise<{ storageBytes: number }> {
    const row = this.db
      .prepare(
        `SELECT (SELECT COALESCE(SUM(size), 0) FROM blobs b WHERE registry = ?
                 AND EXISTS (SELECT 1 FROM blob_links l WHERE l.registry = b.registry AND l.digest = b.digest))
              + (SELECT COALESCE(SUM(size), 0) FROM manifests WHERE registry = ?) AS bytes`,
      )
      .get(registry, registry) as { bytes: number };
    return { storageBytes: row.bytes };
  }

  async findBlob(registry: string, digest: string): Promise<{ size: number } | undefined> {
    return this.stmt.findBlob.get(registry, digest) as { size: number } | undefined;
  }

  async createUpload(session: UploadSession): Promise<void> {
    this.stmt.insertUpload.run(
      session.registry,
      session.id,
      session.repository,
      session.offset,
      session.createdAt.getTime(),
      session.updatedAt.getTime(),
    );
  }

  async getUpload(registry: string, id: string): Promise<UploadSession | undefined> {
    const row = this.stmt.getUpload.get(registry, id) as UploadRow | undefined;
    return row && uploadFromRow(row);
  }

  async advanceUpload(
    registry: string,
    id: string,
    expectedOffset: number,
    offset: number,
    at: Date,
  ): Promise<boolean> {
    return this.stmt.advanceUpload.run(offset, at.getTime(), registry, id, expectedOffset).changes > 0;
  }

  async deleteUpload(registry: string, id: string): Promise<boolean> {
    return this.stmt.deleteUpload.run(registry, id).changes > 0;
  }

  async listStaleUploads(before: Date, limit: number): Promise<UploadSession[]> {
    return (this.stmt.staleUploads.all(before.getTime(), limit) as UploadRow[]).map(uploadFromRow);
  }

  async markUploadCommitting(registry: string, id: string, digest: string): Promise<boolean> {
    return this.stmt.markCommitting.run(digest, registry, id).changes > 0;
  }

  async listUploads(registry: string, limit: number): Promise<UploadSession[]> {
    return (this.stmt.registryUploads.all(registry, limit) as UploadRow[]).map(uploadFromRow);
  }

  async countUploads(registry: string): Promise<number> {
    return (this.stmt.countUploads.get(registry) as { n: number }).n;
  }

  async close(): Promise<void> {
    this.db.close();
  }

  private emit(event: ChangeEvent): void {
    this.feed.publish(event);
  }
}

/** Databases from before garbage collection lack `blob_links.linked_at`; their links count as old. */
function addLinkTimes(db: Database.Database): void {
  const columns = db.prepare('PRAGMA table_info(blob_links)').all() as { name: string }[];
  if (!columns.some((c) => c.name === 'linked_at'))
    db.exec('ALTER TABLE blob_links ADD COLUMN linked_at INTEGER NOT NULL DEFAULT 0');
  db.exec(LINK_INDEX);
}
