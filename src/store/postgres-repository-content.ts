import { sql } from 'kysely';
import type { ChangeFeed } from './change-feed.js';
import type { SqlDatabase } from './sql/database.js';
import {
  chunks,
  ensureLockedRow,
  metadataDb,
  type MetadataDb,
  type MetadataTables,
} from './sql/metadata-schema.js';
import { writeTransaction } from './sql/transaction.js';
import type { ManifestRecord, ReferrerDescriptor } from './types.js';

/** Thrown inside putManifest's transaction to roll it back when a referenced digest is gone. */
class MissingReference {
  constructor(readonly digest: string) {}
}

/**
 * Manifests, tags set with them, referrers and blob links: the PostgreSQL metadata store's part for a
 * repository's content, where nodes race. Writers that add to a repository hold a key-share lock on its
 * row, so a repository or registry delete waits for them and then deletes what they wrote; a manifest
 * put holds key-share locks on its own row and on the links and child manifests it re-checks, so an
 * unlink, a manifest delete or garbage collection waits for it and then sees it (or committed first and
 * is seen by it). Lock order everywhere: repository, manifest, blob record, links (no cycles).
 */
export class PostgresRepositoryContent {
  private readonly db: MetadataDb;

  constructor(
    private readonly database: SqlDatabase,
    private readonly feed: ChangeFeed,
  ) {
    this.db = metadataDb(database);
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
      await this.transaction(async (trx) => {
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
    const removed = await this.transaction(async (trx) => {
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
    await this.transaction(async (trx) => {
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

  private transaction<T>(work: (trx: MetadataDb) => Promise<T>): Promise<T> {
    return writeTransaction<MetadataTables, T>(this.database, work);
  }

  /** Creates the repository if needed and holds its key-share lock until the transaction ends. */
  private lockRepository(trx: MetadataDb, registry: string, repository: string, now: number): Promise<void> {
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
function lockLinks(trx: MetadataDb, registry: string, repository: string, digests: string[]) {
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

function lockManifests(trx: MetadataDb, registry: string, repository: string, digests: string[]) {
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
