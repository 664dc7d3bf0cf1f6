import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlockBlobClient } from '@azure/storage-blob';
import { StoreConflictError } from './errors.js';

// An upload on Azure is one block blob whose committed block list is the upload's accepted bytes.
// A write stages new blocks and then commits "the blocks before its offset + its own blocks", so an
// interrupted write (its blocks staged but never committed, or committed past what the session
// accepted) is simply left out by the next write at that offset.

/** Bytes per staged block: big enough for few round trips, small enough to hold a few in memory. */
export const BLOCK_BYTES = 4 * 1024 * 1024;
/** Blocks staged at once per write; with the block being filled this bounds a write's memory. */
const STAGING_CONCURRENCY = 2;
/** Digits of the offset in a block id (every id of a blob must have the same length). */
const OFFSET_DIGITS = 16;

/** A committed block of an upload: where it starts, and how long it is. */
export interface UploadBlock {
  id: string;
  offset: number;
  size: number;
}

/** A block id that names the block's offset in the upload and the write that staged it. */
export function blockId(offset: number, writeNonce: string): string {
  return Buffer.from(`${String(offset).padStart(OFFSET_DIGITS, '0')}-${writeNonce}`).toString('base64');
}

/** A fresh tag for one write's blocks, so a retry never collides with an earlier write's staged blocks. */
export function writeNonce(): string {
  return randomBytes(6).toString('hex');
}

/**
 * The committed blocks of an upload with their offsets, checked against the offsets their ids
 * encode (a list this code did not write is refused rather than misread).
 */
export function committedBlocks(blocks: { name?: string; size?: number }[]): UploadBlock[] {
  const out: UploadBlock[] = [];
  let offset = 0;
  for (const block of blocks) {
    const id = block.name ?? '';
    const encoded = Number(Buffer.from(id, 'base64').toString('latin1').slice(0, OFFSET_DIGITS));
    if (encoded !== offset)
      throw new Error(`upload block ${id} claims offset ${encoded} but sits at ${offset}`);
    const size = block.size ?? 0;
    out.push({ id, offset, size });
    offset += size;
  }
  return out;
}

/**
 * The committed blocks that make up exactly the first `length` bytes. A block reaching past `length`
 * is dropped only when it starts at or after it: uploads are only ever cut at the end of an accepted
 * write, which is a block boundary, so a block across `length` means someone else changed the upload.
 */
export function prefixBlocks(blocks: UploadBlock[], length: number, uploadId: string): UploadBlock[] {
  const kept = blocks.filter((block) => block.offset + block.size <= length);
  const end = kept.length ? kept[kept.length - 1]!.offset + kept[kept.length - 1]!.size : 0;
  if (end !== length) {
    const total = blocks.length ? blocks[blocks.length - 1]!.offset + blocks[blocks.length - 1]!.size : 0;
    throw new StoreConflictError(
      `upload ${uploadId} holds ${total} bytes with no block boundary at ${length}; it was changed by another writer`,
    );
  }
  return kept;
}

/**
 * Stages `data` as blocks of `BLOCK_BYTES` starting at `offset`, at most `STAGING_CONCURRENCY` in
 * flight, pulling from the stream only as staging keeps up. Resolves to the new blocks' ids, the
 * byte count and the last block's size; rejects (after every started request settled) when the stream or a request fails.
 */
export async function stageStream(
  client: BlockBlobClient,
  offset: number,
  data: Readable,
): Promise<{ ids: string[]; bytes: number; lastSize: number }> {
  const nonce = writeNonce();
  const ids: string[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let position = offset;
  let lastSize = 0;

  const stage = async (block: Buffer) => {
    const id = blockId(position, nonce);
    position += block.length;
    lastSize = block.length;
    ids.push(id);
    // Every request gets its handler at once: a failed stage must not become an unhandled rejection
    // while the loop is waiting on the stream.
    const request: Promise<void> = client.stageBlock(id, block, block.length).then(
      () => undefined,
      (error: unknown) => {
        failure ??= error;
      },
    );
    const tracked = request.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    while (inFlight.size >= STAGING_CONCURRENCY) await Promise.race(inFlight);
    if (failure !== undefined) throw failure;
  };
  const cut = async () => {
    const whole = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    let start = 0;
    while (whole.length - start >= BLOCK_BYTES) {
      await stage(whole.subarray(start, start + BLOCK_BYTES));
      start += BLOCK_BYTES;
    }
    pending = start < whole.length ? [whole.subarray(start)] : [];
    pendingBytes = whole.length - start;
  };

  try {
    for await (const chunk of data) {
      const buffer = chunk as Buffer;
      pending.push(buffer);
      pendingBytes += buffer.length;
      if (pendingBytes >= BLOCK_BYTES) await cut();
    }
    if (pendingBytes > 0) await stage(pending.length === 1 ? pending[0]! : Buffer.concat(pending));
    pending = [];
  } finally {
    await Promise.allSettled(inFlight);
  }
  if (failure !== undefined) throw failure;
  return { ids, bytes: position - offset, lastSize };
}

/** Uploads whose hashed prefix this node remembers; past this, the oldest are forgotten (no check then). */
const MAX_REMEMBERED = 10_000;

/**
 * Which prefix of each upload this node last wrote or read, named by the id of the block ending it.
 * The service keeps a running hash per upload on the node that wrote the last chunk; if another node
 * rewrote that prefix meanwhile (two nodes raced on one chunk, and this one won the session's offset
 * but lost the bytes), that hash no longer describes the stored bytes. Block ids are unique per write
 * and a rewrite drops every block after its offset, so the prefix is unchanged exactly when the block
 * that ended it is still where it was.
 */
export class SeenPrefixes {
  private readonly seen = new Map<string, { end: number; lastBlock: string }>();

  /**
   * Notes that this node's view of the upload is its first `end` bytes, `blocks` being the upload's
   * committed blocks; forgets it when `end` falls inside a block (a read the service never makes).
   */
  remember(key: string, end: number, blocks: UploadBlock[]): void {
    this.seen.delete(key);
    const last = blocks.filter((block) => block.offset + block.size <= end).pop();
    if (end > 0 && (!last || last.offset + last.size !== end)) return;
    this.seen.set(key, { end, lastBlock: last?.id ?? '' });
    if (this.seen.size > MAX_REMEMBERED) this.seen.delete(this.seen.keys().next().value!);
  }

  /**
   * Refuses (and forgets, so that the caller's retry re-reads and goes on) when the first `end` bytes
   * are no longer those this node saw; `kept` are the upload's current blocks up to `end`.
   */
  check(key: string, end: number, kept: UploadBlock[], uploadId: string): void {
    const seen = this.seen.get(key);
    if (!seen || seen.end !== end || end === 0) return;
    if (kept[kept.length - 1]?.id === seen.lastBlock) return;
    this.seen.delete(key);
    throw new StoreConflictError(
      `upload ${uploadId} was rewritten by another writer since this node last wrote or read it`,
    );
  }

  forget(key: string): void {
    this.seen.delete(key);
  }
}
