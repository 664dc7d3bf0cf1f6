import type { Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createDigestHash } from './digest.js';
import type { DigestAlgorithm } from './names.js';

/**
 * Feeds every byte `source` delivers into `hash`, as it is read by whoever consumes it. The stream is
 * paused first: a `data` listener would otherwise start the flow before the consumer is attached and
 * those bytes would be lost to it (`pipe`/`pipeline` resume it).
 */
export function tapHash(source: Readable, hash: Hash): void {
  source.pause();
  source.on('data', (chunk: Buffer) => hash.update(chunk));
}

/** Hashes a whole stream and returns `algorithm:hex`. */
export async function hashStream(source: Readable, algorithm: DigestAlgorithm): Promise<string> {
  const hash = createDigestHash(algorithm);
  for await (const chunk of source) hash.update(chunk as Buffer);
  return `${algorithm}:${hash.digest('hex')}`;
}

interface HashState {
  offset: number;
  hash: Hash;
}

/**
 * Running sha256 states of uploads in progress on this node. Node's Hash state cannot be saved, so
 * the state is only trusted when its offset equals the session's: after a restart, or when another
 * node took chunks, the caller re-hashes the stored prefix instead (`BlobStore.readUpload`).
 */
export class UploadHashCache {
  private readonly states = new Map<string, HashState>();

  /** A hash positioned at `offset` if this node holds one, taken out of the cache while in use. */
  take(key: string, offset: number): Hash | undefined {
    const state = this.states.get(key);
    this.states.delete(key);
    return state && state.offset === offset ? state.hash : undefined;
  }

  /** Remembers a hash that has consumed exactly `offset` bytes of the upload. */
  put(key: string, offset: number, hash: Hash): void {
    this.states.set(key, { offset, hash });
  }

  delete(key: string): void {
    this.states.delete(key);
  }

  get size(): number {
    return this.states.size;
  }
}

/** Parses a PATCH/PUT `Content-Range` (`<start>-<end>`, optionally `bytes ` prefixed). */
export function parseContentRange(value: string): { start: number; end: number } | undefined {
  const match = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d{1,15}|\*))?$/.exec(value.trim());
  if (!match) return undefined;
  const start = Number(match[1]);
  const end = Number(match[2]);
  return end >= start ? { start, end } : undefined;
}
