import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** A byte range, both ends inclusive, as in HTTP `Range`. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Content-addressed blob bytes and in-progress uploads, keyed by registry.
 * Implementations: `FsBlobStore` (local filesystem) and `AzureBlobStore` (Azure Blob Storage).
 */
export interface BlobStore {
  /** Size of a committed blob, or undefined when it is not stored. */
  stat(registry: string, digest: string): Promise<{ size: number } | undefined>;
  /** Streams a committed blob, or a range of it; rejects with a NotFound error when it is missing. */
  open(registry: string, digest: string, range?: ByteRange): Promise<Readable>;
  /**
   * A committed blob as an open local file, for stores that keep one (served to the socket without
   * stream layers, `src/http/v2/send-file.ts`); rejects with a NotFound error when it is missing.
   */
  openFile?(registry: string, digest: string): Promise<FileHandle>;
  /** Removes a committed blob's bytes (garbage collection; handlers unlink instead). */
  delete(registry: string, digest: string): Promise<void>;
  /** Removes every blob and upload of a registry. */
  deleteRegistry(registry: string): Promise<void>;

  /** Creates an empty upload. */
  createUpload(registry: string, uploadId: string): Promise<void>;
  /**
   * Writes `data` into the upload starting at byte `offset` (anything past `offset` from an earlier,
   * interrupted write is overwritten) and resolves to the number of bytes written.
   */
  writeUpload(registry: string, uploadId: string, offset: number, data: Readable): Promise<number>;
  /** Streams the first `length` bytes of an upload (to re-hash it after a restart). */
  readUpload(registry: string, uploadId: string, length: number): Promise<Readable>;
  /**
   * Makes the first `length` bytes of an upload the blob `digest`, atomically: afterwards the blob is
   * complete or absent, never partial. An existing blob is kept, not rewritten. Removes the upload.
   */
  commitUpload(registry: string, uploadId: string, digest: string, length: number): Promise<void>;
  /** Removes an upload's bytes; a missing upload is not an error. */
  deleteUpload(registry: string, uploadId: string): Promise<void>;
  /** The upload files a registry holds, with when each was last written (for crash reconciliation). */
  listUploadFiles(registry: string): AsyncIterable<{ id: string; mtime: Date }>;
  /**
   * A URL that serves a committed blob's bytes without credentials for `ttlSeconds` (read only), for
   * `blobRedirect`; undefined when the blob is not stored. Stores that cannot sign URLs leave it out.
   */
  redirectUrl?(registry: string, digest: string, ttlSeconds: number): Promise<string | undefined>;
}

/** A stored manifest: the exact bytes the client sent, plus what we index about it. */
export interface ManifestRecord {
  digest: string;
  mediaType: string;
  size: number;
  content: Buffer;
  /** Digest of the manifest's `subject`, for the referrers API. */
  subject?: string | undefined;
  artifactType?: string | undefined;
  annotations?: Record<string, string> | undefined;
}

/** What a referrers index lists about one manifest. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string | undefined;
  annotations?: Record<string, string> | undefined;
}

/** A resumable blob upload's durable state. */
export interface UploadSession {
  registry: string;
  repository: string;
  id: string;
  /** Bytes accepted so far, in order. */
  offset: number;
  createdAt: Date;
  updatedAt: Date;
  /** Set once the bytes were verified: the digest they are being committed as (for crash recovery). */
  committing?: string;
}

/** A page request: entries strictly after `last`, at most `limit`. */
export interface PageQuery {
  last?: string | undefined;
  limit: number;
}

/** A registry resource as stored; the management plane owns what `properties` holds. */
export interface RegistryRecord {
  name: string;
  createdAt: Date;
  properties: Record<string, unknown>;
  /**
   * Bumped by the store on every update (1 when created); what compare-and-swap updates and the
   * management API's ETag are made of. Ignored by `createRegistry`.
   */
  version?: number;
}

/** What changed, for listeners that cache: the union lives with the change feed. */
export type { ChangeEvent } from './change-feed.js';
import type { ChangeEvent } from './change-feed.js';

/**
 * Registry metadata: registries, repositories, tags, manifests, blob links, referrers and upload sessions.
 * Every key carries the registry name. Implementations: SQLite (embedded); later PostgreSQL.
 */
export interface MetadataStore {
  // Registries
  getRegistry(name: string): Promise<RegistryRecord | undefined>;
  listRegistries(): Promise<RegistryRecord[]>;
  /** Creates a registry, or fails with `false` when the name is taken. */
  createRegistry(record: RegistryRecord): Promise<boolean>;
  /**
   * Replaces a registry's properties and bumps its version; with `expectedVersion`, only if the stored
   * version still is that one (compare-and-swap). False when absent or the version moved on.
   */
  updateRegistry(
    name: string,
    properties: Record<string, unknown>,
    expectedVersion?: number,
  ): Promise<boolean>;
  /** Deletes a registry and all of its metadata; with `expectedVersion`, only at that version. */
  deleteRegistry(name: string, expectedVersion?: number): Promise<boolean>;
  /** Subscribes to changes; returns an unsubscribe function. */
  onChange(listener: (event: ChangeEvent) => void): () => void;

  // Repositories and tags
  repositoryExists(registry: string, repository: string): Promise<boolean>;
  listRepositories(registry: string, page: PageQuery): Promise<string[]>;
  listTags(registry: string, repository: string, page: PageQuery): Promise<string[]>;
  resolveTag(registry: string, repository: string, tag: string): Promise<string | undefined>;
  /** Counts of a repository's tags and manifests. */
  repositoryStats(registry: string, repository: string): Promise<{ tagCount: number; manifestCount: number }>;
  /** Deletes a repository: its tags, manifests and blob links (blob bytes are left to garbage collection). */
  deleteRepository(registry: string, repository: string): Promise<boolean>;
  /** Removes a tag; false when it did not exist. */
  deleteTag(registry: string, repository: string, tag: string): Promise<boolean>;

  // Manifests
  getManifest(registry: string, repository: string, digest: string): Promise<ManifestRecord | undefined>;
  /** Which of `digests` are manifests of the repository. */
  existingManifests(registry: string, repository: string, digests: string[]): Promise<Set<string>>;
  /**
   * Stores a manifest (idempotent) and, when given, points `tag` at it, in one transaction that first
   * re-checks that each of `blobs` is still linked into the repository and each of `children` is
   * still a manifest of it; resolves to the first digest that is not (and stores nothing then).
   */
  putManifest(
    registry: string,
    repository: string,
    manifest: ManifestRecord,
    tag?: string,
    blobs?: readonly string[],
    children?: readonly string[],
  ): Promise<string | undefined>;
  /** Deletes a manifest, its tags and its referrer entry; false when it did not exist. */
  deleteManifest(registry: string, repository: string, digest: string): Promise<boolean>;
  listReferrers(
    registry: string,
    repository: string,
    subject: string,
    artifactType?: string,
  ): Promise<ReferrerDescriptor[]>;

  // Blobs
  /** The size of a blob linked into the repository, or undefined. */
  linkedBlob(registry: string, repository: string, digest: string): Promise<{ size: number } | undefined>;
  /** Which of `digests` are linked into the repository, with their sizes. */
  linkedBlobs(registry: string, repository: string, digests: string[]): Promise<Map<string, number>>;
  /** Records a committed blob and links it into the repository (creating the repository). */
  linkBlob(registry: string, repository: string, digest: string, size: number): Promise<void>;
  /** Removes a repository's link to a blob; false when there was none. */
  unlinkBlob(registry: string, repository: string, digest: string): Promise<boolean>;
  /**
   * Bytes a registry stores: its blobs still linked into some repository (each once, however many
   * repositories link it) and its manifests. Unlinked bytes awaiting garbage collection do not count.
   */
  registryUsage(registry: string): Promise<{ storageBytes: number }>;
  /** A committed blob some repository of the registry still links, for mounts without `from`. */
  findBlob(registry: string, digest: string): Promise<{ size: number } | undefined>;

  // Upload sessions
  createUpload(session: UploadSession): Promise<void>;
  getUpload(registry: string, id: string): Promise<UploadSession | undefined>;
  /** Moves an upload's offset from `expectedOffset` to `offset`; false when another writer got there first. */
  advanceUpload(
    registry: string,
    id: string,
    expectedOffset: number,
    offset: number,
    at: Date,
  ): Promise<boolean>;
  deleteUpload(registry: string, id: string): Promise<boolean>;
  /** Uploads not touched since `before`. */
  listStaleUploads(before: Date, limit: number): Promise<UploadSession[]>;
  /** Records, before the commit starts, the verified digest an upload's bytes become. */
  markUploadCommitting(registry: string, id: string, digest: string): Promise<boolean>;
  /** A registry's open upload sessions (at most `limit`). */
  listUploads(registry: string, limit: number): Promise<UploadSession[]>;
  /** How many upload sessions a registry has open. */
  countUploads(registry: string): Promise<number>;

  close(): Promise<void>;
}

/** A principal of the management API: a user account or an API key. */
export interface IdentityRecord {
  id: string;
  name: string;
  kind: 'user' | 'apiKey';
  /** scrypt hash of the password or key. */
  secretHash: string;
  /** Marked trusted: may bypass network rules of registries that allow trusted services. */
  trustedService: boolean;
  createdAt: Date;
  /** The identity's own address ranges (canonical); absent means any address. */
  allowedNetworks?: string[];
}

export type RoleName = 'Owner' | 'Contributor' | 'Reader';

/** A role of a principal on one registry, or on every registry (`*`). */
export interface RoleAssignment {
  principalId: string;
  registry: string;
  role: RoleName;
}

/** One refused data-plane request, for the denial log. */
export interface DenialRecord {
  registry: string;
  time: Date;
  clientIp: string;
  method: string;
  path: string;
  reason: string;
  /** `public` or `private:<connection name>`. */
  entry: string;
  /** Report-only mode: the request would have been refused, and was let through. */
  reportOnly?: boolean;
}

/**
 * Denials aggregated per registry, client address, reason, entry point, mode and minute: what the
 * denial log stores, so a flood adds a row per address and minute rather than one per request.
 */
export interface DenialBucket {
  registry: string;
  /** Start of the minute (UTC). */
  minute: Date;
  clientIp: string;
  reason: string;
  entry: string;
  reportOnly: boolean;
  count: number;
  firstSeen: Date;
  lastSeen: Date;
  /** A few distinct sample requests of the bucket (at most `DENIAL_SAMPLES`). */
  samples: { method: string; path: string }[];
}

/** Sample requests kept per denial bucket. */
export const DENIAL_SAMPLES = 3;

/** What a denial log query returns: buckets newest first, totals per address, and a series per minute. */
export interface DenialQueryResult {
  buckets: DenialBucket[];
  countsByIp: { clientIp: string; count: number; lastSeen: Date }[];
  timeSeries: { minute: Date; counts: Record<string, number> }[];
}

/** Accounts, API keys and role assignments. */
export interface IdentityStore {
  createIdentity(identity: IdentityRecord): Promise<boolean>;
  getIdentity(id: string): Promise<IdentityRecord | undefined>;
  findIdentityByName(name: string): Promise<IdentityRecord | undefined>;
  listIdentities(kind?: IdentityRecord['kind']): Promise<IdentityRecord[]>;
  deleteIdentity(id: string): Promise<boolean>;
  countIdentities(): Promise<number>;
  setRole(assignment: RoleAssignment): Promise<void>;
  removeRole(principalId: string, registry: string): Promise<boolean>;
  rolesOf(principalId: string): Promise<RoleAssignment[]>;
  /** Drops the role assignments scoped to a deleted registry. */
  deleteRolesForRegistry(registry: string): Promise<void>;
}

/** The denial log: counts added in batches, kept for a retention period and under a size bound. */
export interface DenialAuditStore {
  /** Adds the buckets' counts to the stored ones (same key: counts add, samples merge). */
  addDenialCounts(buckets: DenialBucket[]): Promise<void>;
  queryDenials(
    registry: string,
    filter: { since?: Date; clientIp?: string; limit: number; seriesSince: Date },
  ): Promise<DenialQueryResult>;
  /** Drops buckets older than `before`, then the oldest minutes until at most `maxBuckets` remain. */
  pruneDenials(before: Date, maxBuckets: number): Promise<{ deleted: number }>;
  deleteDenialsForRegistry(registry: string): Promise<void>;
}

/** A token-signing key pair; the private half is sealed with the data directory's key file. */
export interface SigningKeyRecord {
  kid: string;
  alg: string;
  publicJwk: string;
  sealedPrivateJwk: string;
  createdAt: Date;
}

/** ACR's data-plane-only roles, assignable per registry next to the management roles. */
export type DataPlaneRoleName = 'AcrPull' | 'AcrPush' | 'AcrDelete';

/** A data-plane role of a principal on one registry (a principal may hold several). */
export interface DataPlaneRoleAssignment {
  principalId: string;
  registry: string;
  role: DataPlaneRoleName;
}

/** A scope map: which actions on which repositories (ACR `repositories/<name>/<action>` strings). */
export interface ScopeMapRecord {
  registry: string;
  name: string;
  description: string;
  actions: string[];
  createdAt: Date;
  updatedAt: Date;
  /** Bumped on every update, so concurrent updates cannot overwrite each other unseen. */
  version: number;
}

/** One of a token's two passwords, kept as a slow hash only. */
export interface TokenPasswordRecord {
  name: 'password1' | 'password2';
  hash: string;
  createdAt: Date;
  expiry?: Date | undefined;
}

/** A repository-scoped token: a user name in one registry with a scope map. */
export interface TokenRecord {
  registry: string;
  name: string;
  scopeMap: string;
  status: 'enabled' | 'disabled';
  passwords: TokenPasswordRecord[];
  createdAt: Date;
  updatedAt: Date;
  version: number;
  /** Room for later per-identity settings (e.g. network conditions); stored as JSON. */
  properties: Record<string, unknown>;
}

/** The outcome of one sign-in attempt. */
export type SignInResult = 'success' | 'failure' | 'rateLimited' | 'disabled';

/** Sign-ins aggregated per minute, identity, address and outcome (a flood adds counts, not rows). */
export interface SignInRecord {
  /** Start of the minute. */
  minute: Date;
  /** The registry, or `*` for the management API. */
  registry: string;
  identity: string;
  clientIp: string;
  listener: 'data' | 'management';
  result: SignInResult;
  count: number;
  lastSeen: Date;
}

/** Signing keys, data-plane roles, scope maps, tokens and the sign-in log. */
export interface AuthStore {
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  /** Adds a key; false when the kid exists. */
  addSigningKey(key: SigningKeyRecord): Promise<boolean>;

  addDataPlaneRole(assignment: DataPlaneRoleAssignment): Promise<void>;
  removeDataPlaneRole(assignment: DataPlaneRoleAssignment): Promise<boolean>;
  dataPlaneRolesOf(principalId: string): Promise<DataPlaneRoleAssignment[]>;
  dataPlaneRolesOn(registry: string): Promise<DataPlaneRoleAssignment[]>;

  getScopeMap(registry: string, name: string): Promise<ScopeMapRecord | undefined>;
  listScopeMaps(registry: string): Promise<ScopeMapRecord[]>;
  /** Creates a scope map; false when the name is taken. */
  createScopeMap(record: ScopeMapRecord): Promise<boolean>;
  /** Replaces a scope map if its version is still `expectedVersion`; false otherwise. */
  updateScopeMap(record: ScopeMapRecord, expectedVersion: number): Promise<boolean>;
  deleteScopeMap(registry: string, name: string): Promise<boolean>;

  getToken(registry: string, name: string): Promise<TokenRecord | undefined>;
  listTokens(registry: string): Promise<TokenRecord[]>;
  countTokens(registry: string): Promise<number>;
  /** Creates a token unless the name is taken or the registry already has `limit` tokens. */
  createToken(record: TokenRecord, limit: number): Promise<'created' | 'exists' | 'limit'>;
  /** Replaces a token if its version is still `expectedVersion`; false otherwise. */
  updateToken(record: TokenRecord, expectedVersion: number): Promise<boolean>;
  deleteToken(registry: string, name: string): Promise<boolean>;
  /** Drops everything the store keeps for a deleted registry. */
  deleteAuthForRegistry(registry: string): Promise<void>;

  /** Adds aggregated sign-in counts (merging with rows of the same minute and key). */
  appendSignIns(records: SignInRecord[]): Promise<void>;
  querySignIns(filter: {
    registry?: string;
    since?: Date;
    result?: SignInResult;
    limit: number;
  }): Promise<SignInRecord[]>;
  /** Deletes sign-in rows older than `before`, then the oldest beyond `maxRows`. */
  pruneSignIns(before: Date, maxRows: number): Promise<void>;
}

/** A named list of address ranges that registries' IP rules can reference (e.g. "office"). */
export interface IpSetRecord {
  name: string;
  ranges: string[];
  description: string;
  createdAt: Date;
  /** Bumped on every update (1 when created). */
  version: number;
}

/** Named IP sets: management resources of their own. */
export interface IpSetStore {
  listIpSets(): Promise<IpSetRecord[]>;
  getIpSet(name: string): Promise<IpSetRecord | undefined>;
  /** Creates (expectedVersion 0) or replaces (at expectedVersion) a set; false when the version moved on. */
  putIpSet(set: Omit<IpSetRecord, 'version'>, expectedVersion: number): Promise<boolean>;
  deleteIpSet(name: string): Promise<boolean>;
}
