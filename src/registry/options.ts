// The data plane's behaviour switches, in their own file so that RegistryService and BlobUploads
// both import them without importing each other.

import type { ManifestReads } from './manifest-cache.js';

/** Behaviour switches of the data plane, from configuration. */
export interface RegistryOptions {
  /** Largest manifest accepted, in bytes. */
  maxManifestBytes: number;
  /** Whether manifests, tags and blobs may be deleted. */
  deleteEnabled: boolean;
  /** Whether `POST ?mount=` without `from` may mount any blob already in the registry. */
  automaticContentDiscovery: boolean;
  /** Uploads untouched this long are purged. */
  uploadTtlMs: number;
  /** The most bytes a registry may store (its SKU's plan), or undefined for no limit. */
  storageQuota?: (registry: string) => Promise<number | undefined>;
  /** Open upload sessions a registry may hold at once. */
  maxUploadSessionsPerRegistry?: number;
  /** Open upload sessions one client address may hold at once (counted on this node). */
  maxUploadSessionsPerClient?: number;
  /** Where manifest GETs read manifests and tags (the manifest cache); the metadata store when absent. */
  manifestReads?: ManifestReads;
  /** Whether blob GETs are answered with a redirect to the store's own short-lived URL, when it has one. */
  blobRedirect?: boolean;
}
