import { Readable } from 'node:stream';
import {
  BlobSASPermissions,
  BlobServiceClient,
  RestError,
  StorageSharedKeyCredential,
  type BlobClient,
  type BlockBlobClient,
  type ContainerClient,
} from '@azure/storage-blob';
import { SeenPrefixes, committedBlocks, prefixBlocks, stageStream } from './azure-upload-blocks.js';
import { StoreConflictError, StoreNotFoundError } from './errors.js';
import type { BlobStore, ByteRange } from './types.js';

/** How to reach the container (from `blobStore` and `BERTH_AZURE_STORAGE_CONNECTION_STRING`). */
export interface AzureBlobStoreConfig {
  connectionString: string;
  container: string;
}

/** How long start-up waits for the storage account before it gives up. */
const STARTUP_TIMEOUT_MS = 15_000;
/** How long a commit waits for a server-side copy (same-account copies are usually immediate). */
const COPY_TIMEOUT_MS = 10 * 60_000;
/** Attempts at copying an upload into place when the copy another writer left there failed. */
const COPY_ATTEMPTS = 3;
/** Requests in flight while a registry's blobs are deleted. */
const DELETE_CONCURRENCY = 16;
/** Retries of a download whose connection broke, resumed from where it stopped (the SDK does this). */
const DOWNLOAD_RETRIES = 5;

/**
 * Blobs on Azure Blob Storage, one container: `blobs/<registry>/<algorithm>/<hex>` and
 * `uploads/<registry>/<id>`. An upload is a block blob whose committed blocks are its accepted bytes
 * (see azure-upload-blocks.ts), so any node can continue it; a commit is a server-side copy onto the
 * digest's name that only creates (`If-None-Match: *`), and a blob whose copy has not succeeded is
 * treated as absent, so nothing partial is ever served.
 */
export class AzureBlobStore implements BlobStore {
  private readonly seen = new SeenPrefixes();

  constructor(private readonly container: ContainerClient) {}

  /**
   * Connects to the container, creating it when missing, and fails fast with a message naming the
   * settings when the connection string is malformed or the account cannot be reached or refuses us.
   */
  static async fromConfig(config: AzureBlobStoreConfig): Promise<AzureBlobStore> {
    let service: BlobServiceClient;
    try {
      service = BlobServiceClient.fromConnectionString(config.connectionString, {
        retryOptions: { maxTries: 4, retryDelayInMs: 200, maxRetryDelayInMs: 5_000 },
      });
    } catch (error) {
      throw new Error(
        `BERTH_AZURE_STORAGE_CONNECTION_STRING is not a usable connection string: ${(error as Error).message}`,
      );
    }
    const container = service.getContainerClient(config.container);
    try {
      await container.createIfNotExists({ abortSignal: AbortSignal.timeout(STARTUP_TIMEOUT_MS) });
    } catch (error) {
      throw new Error(
        `the blob store (blobStore / BERTH_BLOB_STORE) cannot use container '${config.container}' at ${service.url} ` +
          `with BERTH_AZURE_STORAGE_CONNECTION_STRING: ${describe(error)}`,
      );
    }
    return new AzureBlobStore(container);
  }

  async stat(registry: string, digest: string): Promise<{ size: number } | undefined> {
    try {
      const properties = await this.blob(registry, digest).getProperties();
      if (!copySucceeded(properties.copyStatus)) return undefined;
      return { size: properties.contentLength ?? 0 };
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
  }

  async open(registry: string, digest: string, range?: ByteRange): Promise<Readable> {
    const offset = range?.start ?? 0;
    const count = range ? range.end - range.start + 1 : undefined;
    const response = await this.blob(registry, digest)
      .download(offset, count, { maxRetryRequests: DOWNLOAD_RETRIES })
      .catch(notFoundAs(`blob ${digest}`));
    const body = response.readableStreamBody as Readable | undefined;
    if (!copySucceeded(response.copyStatus)) {
      body?.destroy();
      throw new StoreNotFoundError(`blob ${digest}`);
    }
    return body ?? Readable.from([]);
  }

  async delete(registry: string, digest: string): Promise<void> {
    await this.blob(registry, digest).deleteIfExists();
  }

  async deleteRegistry(registry: string): Promise<void> {
    for (const prefix of [`blobs/${registry}/`, `uploads/${registry}/`]) {
      const running = new Set<Promise<unknown>>();
      for await (const item of this.container.listBlobsFlat({ prefix })) {
        const deletion = this.container
          .deleteBlob(item.name)
          .catch((error: unknown) => {
            if (!isStatus(error, 404)) throw error;
          })
          .finally(() => running.delete(deletion));
        running.add(deletion);
        if (running.size >= DELETE_CONCURRENCY) await Promise.race(running);
      }
      await Promise.all(running);
    }
  }

  async createUpload(registry: string, uploadId: string): Promise<void> {
    await this.upload(registry, uploadId).upload(Buffer.alloc(0), 0, {
      conditions: { ifNoneMatch: '*' },
    });
  }

  async writeUpload(registry: string, uploadId: string, offset: number, data: Readable): Promise<number> {
    const client = this.upload(registry, uploadId);
    const listing = await client.getBlockList('committed').catch(notFoundAs(`upload ${uploadId}`));
    const kept = prefixBlocks(committedBlocks(listing.committedBlocks ?? []), offset, uploadId);
    const key = `${registry}/${uploadId}`;
    this.seen.check(key, offset, kept, uploadId);
    const staged = await stageStream(client, offset, data);
    if (staged.ids.length === 0) return 0;
    // Only if nobody committed since we looked: a cancelled upload is not resurrected, and of two
    // nodes writing the same upload at once exactly one wins.
    await client
      .commitBlockList([...kept.map((block) => block.id), ...staged.ids], {
        conditions: { ifMatch: listing.etag },
      })
      .catch((error: unknown) => this.lostRace(error, client, uploadId));
    this.seen.remember(key, offset + staged.bytes, [
      ...kept,
      {
        id: staged.ids[staged.ids.length - 1]!,
        offset: offset + staged.bytes - staged.lastSize,
        size: staged.lastSize,
      },
    ]);
    return staged.bytes;
  }

  async readUpload(registry: string, uploadId: string, length: number): Promise<Readable> {
    const client = this.upload(registry, uploadId);
    // The blocks first: what is read is then the prefix this node's hash will describe (a rewrite in
    // between is caught by the next write's or the commit's check against them).
    const listing = await client.getBlockList('committed').catch(notFoundAs(`upload ${uploadId}`));
    const blocks = committedBlocks(listing.committedBlocks ?? []);
    this.seen.remember(`${registry}/${uploadId}`, length, blocks);
    if (length === 0) return Readable.from([]);
    const response = await client
      .download(0, length, { maxRetryRequests: DOWNLOAD_RETRIES })
      .catch(notFoundAs(`upload ${uploadId}`));
    return (response.readableStreamBody as Readable | undefined) ?? Readable.from([]);
  }

  async commitUpload(registry: string, uploadId: string, digest: string, length: number): Promise<void> {
    const source = this.upload(registry, uploadId);
    if (await this.stat(registry, digest)) {
      // Content-addressed: the bytes are already there, so an identical second copy is discarded.
      await source.deleteIfExists();
      return;
    }
    const listing = await source.getBlockList('committed').catch(notFoundAs(`upload ${uploadId}`));
    const blocks = committedBlocks(listing.committedBlocks ?? []);
    const kept = prefixBlocks(blocks, length, uploadId);
    const key = `${registry}/${uploadId}`;
    this.seen.check(key, length, kept, uploadId);
    let version = listing.etag;
    if (kept.length < blocks.length) {
      // Cut off what an interrupted chunk committed past the accepted length before copying.
      const cut = await source
        .commitBlockList(
          kept.map((block) => block.id),
          { conditions: { ifMatch: listing.etag } },
        )
        .catch((error: unknown) => this.lostRace(error, source, uploadId));
      version = cut.etag;
    }
    await this.copyIntoPlace(source, version, this.blob(registry, digest), uploadId);
    this.seen.forget(key);
    await source.deleteIfExists();
  }

  async deleteUpload(registry: string, uploadId: string): Promise<void> {
    // Deleting the blob discards its committed and its staged blocks alike.
    this.seen.forget(`${registry}/${uploadId}`);
    await this.upload(registry, uploadId).deleteIfExists();
  }

  async *listUploadFiles(registry: string): AsyncIterable<{ id: string; mtime: Date }> {
    const prefix = `uploads/${registry}/`;
    for await (const item of this.container.listBlobsFlat({ prefix })) {
      yield { id: item.name.slice(prefix.length), mtime: item.properties.lastModified };
    }
  }

  /** A read-only SAS URL of a committed blob, valid for `ttlSeconds`; undefined when it is not stored. */
  async redirectUrl(registry: string, digest: string, ttlSeconds: number): Promise<string | undefined> {
    const client = this.blob(registry, digest);
    // Only an account key can sign a SAS; a connection string holding a SAS of its own cannot, and the
    // blob is then streamed through the node instead.
    if (!(client.credential instanceof StorageSharedKeyCredential)) return undefined;
    if (!(await this.stat(registry, digest))) return undefined;
    const now = Date.now();
    return client.generateSasUrl({
      permissions: BlobSASPermissions.parse('r'),
      // A little slack for clocks that run behind the storage service's.
      startsOn: new Date(now - 60_000),
      expiresOn: new Date(now + ttlSeconds * 1000),
      contentType: 'application/octet-stream',
    });
  }

  /**
   * Server-side copy of the upload onto the blob's name, creating it only if absent, waiting until
   * the copy finished. A blob already there counts once its own copy succeeded (two nodes committed
   * the same digest); a copy there that failed is removed and ours retried.
   */
  private async copyIntoPlace(
    source: BlockBlobClient,
    version: string | undefined,
    target: BlobClient,
    uploadId: string,
  ): Promise<void> {
    const sourceUrl = await this.readableUrl(source);
    for (let attempt = 0; attempt < COPY_ATTEMPTS; attempt++) {
      try {
        // Only the upload exactly as checked above: a write that lands meanwhile fails the copy.
        const poller = await target.beginCopyFromURL(sourceUrl, {
          conditions: { ifNoneMatch: '*' },
          sourceConditions: { ifMatch: version },
        });
        if (poller.getOperationState().result?.copyStatus === 'success') return;
      } catch (error) {
        if (isStatus(error, 404)) throw new StoreNotFoundError(`upload ${uploadId}`);
        // 412 is the source's condition or the target's, depending on the service: look which.
        if (isStatus(error, 412) && (await sourceChanged(source, version)))
          await this.lostRace(error, source, uploadId);
        if (!isStatus(error, 409) && !isStatus(error, 412)) throw error;
      }
      const settled = await settleCopy(target);
      if (settled.status === 'success') return;
      if (settled.status === 'failed' && settled.etag) {
        await target.deleteIfExists({ conditions: { ifMatch: settled.etag } }).catch((error: unknown) => {
          if (!isStatus(error, 412)) throw error;
        });
      }
    }
    throw new Error(`could not copy upload ${uploadId} into place after ${COPY_ATTEMPTS} attempts`);
  }

  /** The upload's URL with read access: a short SAS when we hold the account key, else the client's own. */
  private async readableUrl(source: BlockBlobClient): Promise<string> {
    if (!(source.credential instanceof StorageSharedKeyCredential)) return source.url;
    return source.generateSasUrl({
      permissions: BlobSASPermissions.parse('r'),
      startsOn: new Date(Date.now() - 60_000),
      expiresOn: new Date(Date.now() + COPY_TIMEOUT_MS + 60_000),
    });
  }

  /** A conditional upload write was refused: the upload is gone, or another writer got there first. */
  private async lostRace(error: unknown, client: BlockBlobClient, uploadId: string): Promise<never> {
    if (isStatus(error, 404)) throw new StoreNotFoundError(`upload ${uploadId}`);
    if (!isStatus(error, 412)) throw error;
    if (!(await client.exists())) throw new StoreNotFoundError(`upload ${uploadId}`);
    throw new StoreConflictError(`upload ${uploadId} was changed by another writer meanwhile`);
  }

  private blob(registry: string, digest: string): BlobClient {
    const colon = digest.indexOf(':');
    return this.container.getBlobClient(
      `blobs/${registry}/${digest.slice(0, colon)}/${digest.slice(colon + 1)}`,
    );
  }

  private upload(registry: string, uploadId: string): BlockBlobClient {
    return this.container.getBlockBlobClient(`uploads/${registry}/${uploadId}`);
  }
}

type CopyOutcome = { status: 'success' | 'failed' | 'gone'; etag?: string | undefined };

/** Waits (bounded) until the copy onto `target` is no longer pending. */
async function settleCopy(target: BlobClient): Promise<CopyOutcome> {
  const deadline = Date.now() + COPY_TIMEOUT_MS;
  let delay = 50;
  for (;;) {
    let properties;
    try {
      properties = await target.getProperties();
    } catch (error) {
      if (isStatus(error, 404)) return { status: 'gone' };
      throw error;
    }
    if (copySucceeded(properties.copyStatus)) return { status: 'success' };
    if (properties.copyStatus !== 'pending') return { status: 'failed', etag: properties.etag };
    if (Date.now() > deadline)
      throw new Error(`the copy onto ${target.name} is still pending after ${COPY_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 2_000);
  }
}

/** Whether the upload is no longer at `version` (changed or gone), i.e. a copy was refused for its source. */
async function sourceChanged(source: BlockBlobClient, version: string | undefined): Promise<boolean> {
  try {
    return (await source.getProperties()).etag !== version;
  } catch (error) {
    if (isStatus(error, 404)) return true;
    throw error;
  }
}

/** A blob written directly has no copy status; a copied one counts only once its copy succeeded. */
function copySucceeded(status: string | undefined): boolean {
  return status === undefined || status === 'success';
}

function isStatus(error: unknown, status: number): boolean {
  return error instanceof RestError && error.statusCode === status;
}

/** A rejection handler turning the service's 404 into the store's not-found error. */
function notFoundAs(what: string): (error: unknown) => never {
  return (error: unknown) => {
    if (isStatus(error, 404)) throw new StoreNotFoundError(what);
    throw error;
  };
}

/** A storage error in words an operator can act on: status, service code and message. */
function describe(error: unknown): string {
  if (error instanceof RestError) {
    const status = error.statusCode ? `HTTP ${error.statusCode}` : (error.code ?? 'no response');
    return `${status}${error.code && error.statusCode ? ` ${error.code}` : ''}: ${error.message.split('\n')[0]}`;
  }
  return (error as Error).message;
}
