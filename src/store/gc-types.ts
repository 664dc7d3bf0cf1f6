/** A repository's link to a blob, as garbage collection sees it. */
export interface BlobLinkRecord {
  repository: string;
  digest: string;
  size: number;
  /** When a client last pushed or mounted the blob into the repository (ms since the epoch). */
  linkedAt: number;
}

/** What one garbage collection run did (or, dry, would do) to a registry. */
export interface GcRunRecord {
  id: string;
  registry: string;
  startedAt: Date;
  finishedAt: Date;
  dryRun: boolean;
  status: 'Succeeded' | 'Failed';
  trigger: 'manual' | 'schedule';
  /** Untagged manifests the retention policy removed. */
  manifestsDeleted: number;
  linksDropped: number;
  blobsDeleted: number;
  bytesReclaimed: number;
  /** Blobs kept back because a backup was copying the store (collected by a later run). */
  blobsDeferred: number;
  error?: string | undefined;
}

/** ACR's retention policy for untagged manifests. */
export interface RetentionPolicy {
  days: number;
  status: 'enabled' | 'disabled';
  lastUpdatedTime: Date;
}

/** A page cursor over (repository, digest) keys: entries strictly after it. */
export interface LinkCursor {
  repository: string;
  digest: string;
}

/**
 * Garbage-collection bookkeeping and the registry-content queries only the collector needs, kept out
 * of `MetadataStore`. Implementations share the metadata store's database, so their transactions
 * serialize against its writes (see src/registry/gc.ts for the protocol).
 */
export interface GcStore {
  /** A page of a registry's manifests (repository, digest, bytes), in key order after `after`. */
  manifestPage(
    registry: string,
    after: LinkCursor | undefined,
    limit: number,
  ): Promise<{ repository: string; digest: string; content: Buffer }[]>;
  /** A page of a registry's blob links with sizes and link times, in key order after `after`. */
  linkPage(registry: string, after: LinkCursor | undefined, limit: number): Promise<BlobLinkRecord[]>;
  /** Blob records no repository links any more. */
  unlinkedBlobs(registry: string, limit: number): Promise<{ digest: string; size: number }[]>;
  /**
   * In one write transaction, drops each link that is still older than `linkedBefore` and whose digest
   * appears in no manifest of its repository; resolves to the links dropped.
   */
  dropLinks(registry: string, links: LinkCursor[], linkedBefore: number): Promise<LinkCursor[]>;
  /**
   * In one write transaction, deletes the blob's record if no repository links it and no backup holds a
   * lease; resolves to its size when deleted, `'deferred'` under a backup lease, else undefined.
   */
  dropBlobRecord(registry: string, digest: string, now: number): Promise<number | 'deferred' | undefined>;

  /** Untagged manifests pushed before `before` that no other manifest of the repository refers to. */
  untaggedManifests(
    registry: string,
    before: number,
    limit: number,
  ): Promise<{ repository: string; digest: string }[]>;
  /** Deletes the manifest if, inside the transaction, it still is one `untaggedManifests` would list. */
  deleteUntaggedManifest(
    registry: string,
    repository: string,
    digest: string,
    before: number,
  ): Promise<boolean>;
  getRetentionPolicy(registry: string): Promise<RetentionPolicy | undefined>;
  setRetentionPolicy(registry: string, policy: RetentionPolicy): Promise<void>;

  recordRun(run: GcRunRecord): Promise<void>;
  /** The most recent runs first. */
  listRuns(registry: string, limit: number): Promise<GcRunRecord[]>;
  deleteRegistryRecords(registry: string): Promise<void>;

  /** Takes (or extends) a lease that stops blob deletion until `until` (ms); for online backups. */
  takeBackupLease(id: string, until: number): Promise<void>;
  releaseBackupLease(id: string): Promise<void>;

  /** Answers when the database does (readiness). */
  ping(): Promise<void>;
  /** Open upload sessions across all registries (a gauge). */
  countUploads(): Promise<number>;
  close(): Promise<void>;
}
