import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { MiB } from './options.js';

/** A blob body the bench can stream any number of times, and its digest. */
export interface Payload {
  digest: string;
  size: number;
  stream(): Readable;
}

const SUFFIX_BYTES = 32;

/**
 * A generated file of random bytes. Each `variant(i)` is the file followed by 32 distinct bytes, so
 * every push is a new blob (registries skip storing content they already have) while the file is
 * hashed only once: the variant's digest continues a copy of the file's hash state.
 */
export class PayloadFile {
  private constructor(
    readonly path: string,
    readonly size: number,
    private readonly hash: Hash,
  ) {}

  /** Writes `size` random bytes (a multiple of 1 MiB) to `path`. */
  static async generate(path: string, size: number): Promise<PayloadFile> {
    const hash = createHash('sha256');
    const out = createWriteStream(path);
    for (let written = 0; written < size; written += MiB) {
      const block = randomBytes(Math.min(MiB, size - written));
      hash.update(block);
      if (!out.write(block)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
    out.end();
    await finished(out);
    return new PayloadFile(path, size, hash);
  }

  /** The file plus a suffix unique to `tag`. */
  variant(tag: string): Payload {
    const suffix = createHash('sha256').update(`berth-bench/${tag}/${Date.now()}`).digest();
    const digest = `sha256:${this.hash.copy().update(suffix).digest('hex')}`;
    const path = this.path;
    return {
      digest,
      size: this.size + SUFFIX_BYTES,
      stream: () =>
        Readable.from(
          (async function* () {
            for await (const chunk of createReadStream(path, { highWaterMark: MiB })) yield chunk as Buffer;
            yield suffix;
          })(),
          { objectMode: false },
        ),
    };
  }
}

/**
 * A body of `size` bytes produced 1 MiB at a time and never held whole: a random block with the
 * chunk number and `tag` stamped at its start. Hashing it once up front gives the digest.
 */
export function generatedPayload(size: number, tag: string): Payload {
  const block = randomBytes(MiB);
  function* chunks(): Generator<Buffer> {
    for (let index = 0, sent = 0; sent < size; index++, sent += MiB) {
      const chunk = Buffer.from(block.subarray(0, Math.min(MiB, size - sent)));
      chunk.writeUInt32BE(index, 0);
      chunk.write(tag.slice(0, 28), 4, 'latin1');
      yield chunk;
    }
  }
  const hash = createHash('sha256');
  for (const chunk of chunks()) hash.update(chunk);
  return {
    digest: `sha256:${hash.digest('hex')}`,
    size,
    stream: () => Readable.from(chunks(), { objectMode: false }),
  };
}
