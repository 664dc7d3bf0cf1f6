import { createHash, type Hash } from 'node:crypto';
import type { DigestAlgorithm } from './names.js';

/** Creates a streaming hash for a digest algorithm. */
export function createDigestHash(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

/** The digest of a buffer, as `algorithm:hex`. */
export function digestOf(data: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}
