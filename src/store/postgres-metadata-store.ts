import { sql } from 'kysely';
import { LocalChangeFeed, type ChangeFeed } from './change-feed.js';
import { PostgresUploadSessions } from './postgres-upload-sessions.js';
import type { SqlDatabase } from './sql/database.js';
import {
  chunks,
  ensureLockedRow,
  inTransaction,
  metadataDb,
  type MetadataDb,
  type MetadataTables,
  type MetadataTrx,
} from './sql/metadata-schema.js';
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

/** Thrown inside putManifest's transaction to roll it back when a referenced digest is gone. */
class MissingReference {
  constructor(readonly digest: string) {}
}

/**
 * The metadata store on PostgreSQL, for many nodes over one database. Same tables and encodings as the
 * SQLite store (see sql/metadata-schema.ts). Where SQLite relies on one writer at a time, this store
 * takes row locks: writers that add to a repository hold a key-share lock on its row (a repository or
 * registry delete waits for them, then deletes what they wrote), a manifest put holds key-share locks on
 * the blob links and child manifests it re-checks (an unlink or garbage collection waits, then finds
 * them referenced), and compare-and-swap updates are single conditional UPDATEs. Change events go to
 * `feed` after commit. The database handle is the caller's: `close` does not close it.
 */
export class PostgresMetadataStore implements MetadataStore {
  private readonly db: MetadataDb;
  private readonly uploads: PostgresUploadSessions;
  private readonly unsubscribers = new Set<() => void>();

  constructor(
    database: SqlDatabase,
    private readonly feed: ChangeFeed = new LocalChangeFeed(),
  ) {
    this.db = metadataDb(database);
    this.uploads = new PostgresUploadSessions(this.db);
  }

  async getRegistry(name: string): Promise<RegistryRecord | undefined> {
    const row = await this.db
      .selectFrom('registries')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toRegistry(row);
  }

  async listRegistries(): Promise<RegistryRecord[]> {
    return (await this.db.selectFrom('registries').selectAll().orderBy('name').execute()).map(toRegistry);
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
    const removed = await inTransaction(this.db, async (trx) => {
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
    const removed = await inTransaction(this.db, async (trx) => {
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

  async getManifest(
    registry: string,
    repository: string,
    digest: string,
  ): Promise<ManifestRecord | undefined> {
    const row = await this.db
      .selectFrom('manifests')
      .select(['digest', 'media_type', 'size', 'content', 'subject', 'artifact_type', 'annotations'])
      .where('registry', '=', registry)
      .where('repository', '=', repository)
      .where('digest', '=', digest)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      digest: row.digest,
      mediaType: row.media_type,
      size: row.size,
      content: row.content,
      subject: row.subject ?? undefined,
      artifactType: row.artifact_type ?? undefined,
      annotations: parseAnnotations(row.annotations),
    };
  }

  async existingManifests(registry: string, repository: string, digests: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const part of chunks(digests)) {
      const rows = await this.db
        .selectFrom('manifests')
        .select('digest')
        .where('registry', '=', registry)
        .where('repository', '=', repository)
        .where('digest', 'in', part)
        .execute();
      for (const row of rows) found.add(row.digest);
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
    try {
      await inTransaction(this.db, async (trx) => {
        // Lock order everywhere: repository, then manifest, then blob links (no cycles, no deadlocks).
        await this.lockRepository(trx, registry, repository, now);
        await ensureLockedRow(
          () =>
            trx
              .insertInto('manifests')
              .values({
                registry,
                repository,
                digest: manifest.digest,
                media_type: manifest.mediaType,
                size: manifest.size,
                content: manifest.content,
                subject: manifest.subject ?? null,
                artifact_type: manifest.artifactType ?? null,
                annotations: manifest.annotations ? JSON.stringify(manifest.annotations) : null,
                created_at: now,
              })
              .onConflict((conflict) => conflict.doNothing())
              .execute(),
          () => lockManifests(trx, registry, repository, [manifest.digest]).then((rows) => rows[0]),
        );
        // Re-checked under key-share locks: garbage collection and unlinks (and retention's deletes of
        // untagged manifests) wait for this transaction, or committed before it and are seen here.
        const linked = new Set<string>();
        for (const part of chunks(uniqueSorted(blobs)))
          for (const row of await lockLinks(trx, registry, repository, part)) linked.add(row.digest);
        const missingBlob = blobs.find((digest) => !linked.has(digest));
        if (missingBlob !== undefined) throw new MissingReference(missingBlob);
        const present = new Set<string>();
        for (const part of chunks(uniqueSorted(children)))
          for (const row of await lockManifests(trx, registry, repository, part)) present.add(row.digest);
        const missingChild = children.find((digest) => !present.has(digest));
        if (missingChild !== undefined) throw new MissingReference(missingChild);
        if (tag !== undefined)
          await trx
            .insertInto('tags')
            .values({ registry, repository, tag, digest: manifest.digest, updated_at: now })
            .onConflict((conflict) =>
              conflict.columns(['registry', 'repository', 'tag']).doUpdateSet((eb) => ({
                digest: eb.ref('excluded.digest'),
                updated_at: eb.ref('excluded.updated_at'),
              })),
            )
            .execute();
      });
    } catch (error) {
      if (error instanceof MissingReference) return error.digest;
      throw error;
    }
    this.feed.publish({
      kind: 'manifest',
      registry,
      repository,
      digest: manifest.digest,
      ...(tag !== undefined ? { tag } : {}),
    });
    return undefined;
  }

  async deleteManifest(registry: string, repository: string, digest: string): Promise<boolean> {
    const removed = await inTransaction(this.db, async (trx) => {
      const result = await trx
        .deleteFrom('manifests')
        .where('registry', '=', registry)
        .where('repository', '=', repository)
        .where('digest', '=', digest)
        .executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return false;
      await trx
        .deleteFrom('tags')
        .where('registry', '=', registry)
        .where('repository', '=', repository)
        .where('digest', '=', digest)
        .execute();
      return true;
    });
    if (removed) this.feed.publish({ kind: 'manifest', registry, repository, digest });
    return removed;
  }

  async listReferrers(
    registry: string,
    repository: string,
    subject: string,
    artifactType?: string,
  ): Promise<ReferrerDescriptor[]> {
    let query = this.db
      .selectFrom('manifests')
      .select(['digest', 'media_type', 'size', 'artifact_type', 'annotations'])
      .where('registry', '=', registry)
      .where('repository', '=', repository)
      .where('subject', '=', subject);
    if (artifactType !== undefined) query = query.where('artifact_type', '=', artifactType);
    const rows = await query.orderBy('created_at').orderBy('digest').execute();
    return rows.map((row) => ({
      mediaType: row.media_type,
      digest: row.digest,
      size: row.size,
      artifactType: row.artifact_type ?? undefined,
      annotations: parseAnnotations(row.annotations),
    }));
  }

  async linkedBlob(
    registry: string,
    repository: string,
    digest: string,
  ): Promise<{ size: number } | undefined> {
    const size = (await this.linkedBlobs(registry, repository, [digest])).get(digest);
    return size === undefined ? undefined : { size };
  }

  async linkedBlobs(registry: string, repository: string, digests: string[]): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    for (const part of chunks(digests)) {
      const rows = await this.db
        .selectFrom('blob_links as l')
        .innerJoin('blobs as b', (join) =>
          join.onRef('b.registry', '=', 'l.registry').onRef('b.digest', '=', 'l.digest'),
        )
        .select(['l.digest', 'b.size'])
        .where('l.registry', '=', registry)
        .where('l.repository', '=', repository)
        .where('l.digest', 'in', part)
        .execute();
      for (const row of rows) found.set(row.digest, row.size);
    }
    return found;
  }

  async linkBlob(registry: string, repository: string, digest: string, size: number): Promise<void> {
    const now = Date.now();
    await inTransaction(this.db, async (trx) => {
      await this.lockRepository(trx, registry, repository, now);
      // The blob record's lock keeps garbage collection from deleting it as it is linked again.
      await ensureLockedRow(
        () =>
          trx
            .insertInto('blobs')
            .values({ registry, digest, size, created_at: now })
            .onConflict((conflict) => conflict.doNothing())
            .execute(),
        () =>
          trx
            .selectFrom('blobs')
            .select('digest')
            .where('registry', '=', registry)
            .where('digest', '=', digest)
            .forKeyShare()
            .executeTakeFirst(),
      );
      // A link's time is refreshed by every push or mount: garbage collection's grace period counts
      // from the last time a client put the blob there, not from when it first arrived.
      await trx
        .insertInto('blob_links')
        .values({ registry, repository, digest, linked_at: now })
        .onConflict((conflict) =>
          conflict
            .columns(['registry', 'repository', 'digest'])
            .doUpdateSet((eb) => ({ linked_at: eb.ref('excluded.linked_at') })),
        )
        .execute();
    });
  }

  async unlinkBlob(registry: string, repository: string, digest: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('blob_links')
      .where('registry', '=', registry)
      .where('repository', '=', repository)
      .where('digest', '=', digest)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async registryUsage(registry: string): Promise<{ storageBytes: number }> {
    // SUM of BIGINT is NUMERIC on PostgreSQL (a string to pg); the cast brings it back to int8.
    const { rows } = await sql<{ bytes: number }>`
      SELECT CAST(
        (SELECT COALESCE(SUM(size), 0) FROM blobs b WHERE registry = ${registry}
          AND EXISTS (SELECT 1 FROM blob_links l WHERE l.registry = b.registry AND l.digest = b.digest))
        + (SELECT COALESCE(SUM(size), 0) FROM manifests WHERE registry = ${registry}) AS BIGINT) AS bytes`.execute(
      this.db,
    );
    return { storageBytes: Number(rows[0]?.bytes ?? 0) };
  }

  async findBlob(registry: string, digest: string): Promise<{ size: number } | undefined> {
    // Only a blob some repository still links is known registry-wide: an unlinked one is deleted for
    // clients at once, even before garbage collection removes its bytes.
    const row = await this.db
      .selectFrom('blobs as b')
      .select('b.size')
      .where('b.registry', '=', registry)
      .where('b.digest', '=', digest)
      .where(({ exists, selectFrom }) =>
        exists(
          selectFrom('blob_links as l')
            .select('l.digest')
            .whereRef('l.registry', '=', 'b.registry')
            .whereRef('l.digest', '=', 'b.digest'),
        ),
      )
      .executeTakeFirst();
    return row && { size: row.size };
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

  /** Creates the repository if needed and holds its key-share lock until the transaction ends. */
  private lockRepository(trx: MetadataTrx, registry: string, repository: string, now: number): Promise<void> {
    return ensureLockedRow(
      () =>
        trx
          .insertInto('repositories')
          .values({ registry, name: repository, created_at: now })
          .onConflict((conflict) => conflict.doNothing())
          .execute(),
      () =>
        trx
          .selectFrom('repositories')
          .select('name')
          .where('registry', '=', registry)
          .where('name', '=', repository)
          .forKeyShare()
          .executeTakeFirst(),
    );
  }
}

/** Key-share locks, in digest order (so two transactions never wait on each other in a cycle). */
function lockLinks(trx: MetadataTrx, registry: string, repository: string, digests: string[]) {
  return trx
    .selectFrom('blob_links as l')
    .innerJoin('blobs as b', (join) =>
      join.onRef('b.registry', '=', 'l.registry').onRef('b.digest', '=', 'l.digest'),
    )
    .select('l.digest')
    .where('l.registry', '=', registry)
    .where('l.repository', '=', repository)
    .where('l.digest', 'in', digests)
    .orderBy('l.digest')
    .forKeyShare('l')
    .execute();
}

function lockManifests(trx: MetadataTrx, registry: string, repository: string, digests: string[]) {
  return trx
    .selectFrom('manifests')
    .select('digest')
    .where('registry', '=', registry)
    .where('repository', '=', repository)
    .where('digest', 'in', digests)
    .orderBy('digest')
    .forKeyShare()
    .execute();
}

function uniqueSorted(digests: readonly string[]): string[] {
  return [...new Set(digests)].sort();
}

function parseAnnotations(text: string | null): Record<string, string> | undefined {
  return text ? (JSON.parse(text) as Record<string, string>) : undefined;
}

function toRegistry(row: MetadataTables['registries']): RegistryRecord {
  return {
    name: row.name,
    createdAt: new Date(row.created_at),
    properties: JSON.parse(row.properties) as Record<string, unknown>,
    version: row.version,
  };
}
