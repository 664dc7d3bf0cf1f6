import { sql } from 'kysely';
import { registryFromRow } from './metadata-rows.js';
import { LocalChangeFeed, type ChangeFeed } from './change-feed.js';
import { PostgresRepositoryContent } from './postgres-repository-content.js';
import { PostgresUploadSessions } from './postgres-upload-sessions.js';
import type { SqlDatabase } from './sql/database.js';
import { metadataDb, type MetadataDb, type MetadataTables } from './sql/metadata-schema.js';
import { writeTransaction } from './sql/transaction.js';
import type {
  ChangeEvent,
  ManifestRecord,
  MetadataStore,
  PageQuery,
  ReferrerDescriptor,
  RegistryRecord,
  UploadSession,
} from './types.js';

/** The tables a registry's content lives in, deleted with it; `repositories` first (see deleteRegistry). */
const REGISTRY_TABLES = ['repositories', 'blobs', 'blob_links', 'manifests', 'tags', 'uploads'] as const;

/**
 * The metadata store on PostgreSQL, for many nodes over one database (PostgreSQL only: it takes row
 * locks SQLite has no syntax for). Same tables and encodings as the SQLite store (see
 * sql/metadata-schema.ts). Where SQLite relies on one writer at a time, this store takes row locks (see
 * postgres-repository-content.ts) and compare-and-swap updates are single conditional UPDATEs. Change
 * events go to `feed` after commit. The database handle is the caller's: `close` does not close it.
 */
export class PostgresMetadataStore implements MetadataStore {
  private readonly db: MetadataDb;
  private readonly content: PostgresRepositoryContent;
  private readonly uploads: PostgresUploadSessions;
  private readonly unsubscribers = new Set<() => void>();

  constructor(
    private readonly database: SqlDatabase,
    private readonly feed: ChangeFeed = new LocalChangeFeed(),
  ) {
    this.db = metadataDb(database);
    this.content = new PostgresRepositoryContent(database, feed);
    this.uploads = new PostgresUploadSessions(this.db);
  }

  async getRegistry(name: string): Promise<RegistryRecord | undefined> {
    const row = await this.db
      .selectFrom('registries')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row && registryFromRow(row);
  }

  async listRegistries(): Promise<RegistryRecord[]> {
    return (await this.db.selectFrom('registries').selectAll().orderBy('name').execute()).map(
      registryFromRow,
    );
  }

  async createRegistry(record: RegistryRecord): Promise<boolean> {
    const result = await this.db
      .insertInto('registries')
      .values({
        name: record.name,
        created_at: record.createdAt.getTime(),
        properties: JSON.stringify(record.properties),
        version: 1,
      })
      .onConflict((conflict) => conflict.doNothing())
      .executeTakeFirst();
    const created = Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
    if (created) this.feed.publish({ kind: 'registry', registry: record.name, change: 'created' });
    return created;
  }

  async updateRegistry(
    name: string,
    properties: Record<string, unknown>,
    expectedVersion?: number,
  ): Promise<boolean> {
    // One conditional UPDATE: PostgreSQL re-evaluates `version = $n` on the row it waited for, so of
    // any number of writers that read the same version exactly one succeeds.
    let update = this.db
      .updateTable('registries')
      .set({ properties: JSON.stringify(properties), version: sql<number>`version + 1` })
      .where('name', '=', name);
    if (expectedVersion !== undefined) update = update.where('version', '=', expectedVersion);
    const updated = Number((await update.executeTakeFirst()).numUpdatedRows) > 0;
    if (updated) this.feed.publish({ kind: 'registry', registry: name, change: 'updated' });
    return updated;
  }

  async deleteRegistry(name: string, expectedVersion?: number): Promise<boolean> {
    const removed = await this.transaction(async (trx) => {
      const row = await trx
        .selectFrom('registries')
        .select('version')
        .where('name', '=', name)
        .forUpdate()
        .executeTakeFirst();
      if (expectedVersion !== undefined && row?.version !== expectedVersion) return false;
      // Repositories first: that waits for every writer holding a repository's lock, so the later
      // deletes see (and remove) what they committed.
      for (const table of REGISTRY_TABLES) await trx.deleteFrom(table).where('registry', '=', name).execute();
      const result = await trx.deleteFrom('registries').where('name', '=', name).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
    if (removed) this.feed.publish({ kind: 'registry', registry: name, change: 'deleted' });
    return removed;
  }

  onChange(listener: (event: ChangeEvent) => void): () => void {
    const unsubscribe = this.feed.subscribe((event) => {
      if (event.kind === 'registry' || event.kind === 'manifest' || event.kind === 'resync') listener(event);
    });
    const remove = () => {
      unsubscribe();
      this.unsubscribers.delete(remove);
    };
    this.unsubscribers.add(remove);
    return remove;
  }

  async repositoryExists(registry: string, repository: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('repositories')
      .select('name')
      .where('registry', '=', registry)
      .where('name', '=', repository)
      .executeTakeFirst();
    return row !== undefined;
  }

  async listRepositories(registry: string, page: PageQuery): Promise<string[]> {
    const rows = await this.db
      .selectFrom('repositories')
      .select('name')
      .where('registry', '=', registry)
      .where('name', '>', page.last ?? '')
      .orderBy('name')
      .limit(page.limit)
      .execute();
    return rows.map((row) => row.name);
  }

  async listTags(registry: string, repository: string, page: PageQuery): Promise<string[]> {
    const rows = await this.db
      .selectFrom('tags')
      .select('tag')
      .where('registry', '=', registry)
      .where('repository', '=', repository)
      .where('tag', '>', page.last ?? '')
      .orderBy('tag')
      .limit(page.limit)
      .execute();
    return rows.map((row) => row.tag);
  }

  async resolveTag(registry: string, repository: string, tag: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('tags')
      .select('digest')
      .where('registry', '=', registry)
      .where('repository', '=', repository)
      .where('tag', '=', tag)
      .executeTakeFirst();
    return row?.digest;
  }

  async repositoryStats(
    registry: string,
    repository: string,
  ): Promise<{ tagCount: number; manifestCount: number }> {
    const count = async (table: 'tags' | 'manifests') =>
      Number(
        (
          await this.db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll().as('n'))
            .where('registry', '=', registry)
            .where('repository', '=', repository)
            .executeTakeFirstOrThrow()
        ).n,
      );
    return { tagCount: await count('tags'), manifestCount: await count('manifests') };
  }

  async deleteRepository(registry: string, repository: string): Promise<boolean> {
    const removed = await this.transaction(async (trx) => {
      // The repository's row lock orders this delete against every put and link into the repository.
      await trx
        .selectFrom('repositories')
        .select('name')
        .where('registry', '=', registry)
        .where('name', '=', repository)
        .forUpdate()
        .executeTakeFirst();
      for (const table of ['tags', 'manifests', 'blob_links'] as const)
        await trx
          .deleteFrom(table)
          .where('registry', '=', registry)
          .where('repository', '=', repository)
          .execute();
      const result = await trx
        .deleteFrom('repositories')
        .where('registry', '=', registry)
        .where('name', '=', repository)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
    if (removed) this.feed.publish({ kind: 'manifest', registry, repository });
    return removed;
  }

  async deleteTag(registry: string, repository: string, tag: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('tags')
      .where('registry', '=', registry)
      .where('repository', '=', repository)
      .where('tag', '=', tag)
      .executeTakeFirst();
    const removed = Number(result.numDeletedRows) > 0;
    if (removed) this.feed.publish({ kind: 'manifest', registry, repository, tag });
    return removed;
  }

  getManifest(registry: string, repository: string, digest: string): Promise<ManifestRecord | undefined> {
    return this.content.getManifest(registry, repository, digest);
  }

  existingManifests(registry: string, repository: string, digests: string[]): Promise<Set<string>> {
    return this.content.existingManifests(registry, repository, digests);
  }

  putManifest(
    registry: string,
    repository: string,
    manifest: ManifestRecord,
    tag?: string,
    blobs?: readonly string[],
    children?: readonly string[],
  ): Promise<string | undefined> {
    return this.content.putManifest(registry, repository, manifest, tag, blobs, children);
  }

  deleteManifest(registry: string, repository: string, digest: string): Promise<boolean> {
    return this.content.deleteManifest(registry, repository, digest);
  }

  listReferrers(
    registry: string,
    repository: string,
    subject: string,
    artifactType?: string,
  ): Promise<ReferrerDescriptor[]> {
    return this.content.listReferrers(registry, repository, subject, artifactType);
  }

  linkedBlob(registry: string, repository: string, digest: string): Promise<{ size: number } | undefined> {
    return this.content.linkedBlob(registry, repository, digest);
  }

  linkedBlobs(registry: string, repository: string, digests: string[]): Promise<Map<string, number>> {
    return this.content.linkedBlobs(registry, repository, digests);
  }

  linkBlob(registry: string, repository: string, digest: string, size: number): Promise<void> {
    return this.content.linkBlob(registry, repository, digest, size);
  }

  unlinkBlob(registry: string, repository: string, digest: string): Promise<boolean> {
    return this.content.unlinkBlob(registry, repository, digest);
  }

  registryUsage(registry: string): Promise<{ storageBytes: number }> {
    return this.content.registryUsage(registry);
  }

  findBlob(registry: string, digest: string): Promise<{ size: number } | undefined> {
    return this.content.findBlob(registry, digest);
  }

  createUpload(session: UploadSession): Promise<void> {
    return this.uploads.create(session);
  }

  getUpload(registry: string, id: string): Promise<UploadSession | undefined> {
    return this.uploads.get(registry, id);
  }

  advanceUpload(
    registry: string,
    id: string,
    expectedOffset: number,
    offset: number,
    at: Date,
  ): Promise<boolean> {
    return this.uploads.advance(registry, id, expectedOffset, offset, at);
  }

  deleteUpload(registry: string, id: string): Promise<boolean> {
    return this.uploads.delete(registry, id);
  }

  listStaleUploads(before: Date, limit: number): Promise<UploadSession[]> {
    return this.uploads.listStale(before, limit);
  }

  markUploadCommitting(registry: string, id: string, digest: string): Promise<boolean> {
    return this.uploads.markCommitting(registry, id, digest);
  }

  listUploads(registry: string, limit: number): Promise<UploadSession[]> {
    return this.uploads.list(registry, limit);
  }

  countUploads(registry: string): Promise<number> {
    return this.uploads.count(registry);
  }

  async close(): Promise<void> {
    for (const unsubscribe of [...this.unsubscribers]) unsubscribe();
  }

  private transaction<T>(work: (trx: MetadataDb) => Promise<T>): Promise<T> {
    return writeTransaction<MetadataTables, T>(this.database, work);
  }
}
