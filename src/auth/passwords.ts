import {
  createHash,
  randomBytes,
  scrypt as scryptCallback,
  timingSafeEqual,
  type ScryptOptions,
} from 'node:crypto';

const KEY_LENGTH = 32;
const PARAMS = { N: 16384, r: 8, p: 1 } as const;
/**
 * scrypt runs on libuv's four-thread pool, which file I/O shares: unbounded, a flood of wrong
 * passwords would queue every blob read behind it. One hash at a time leaves the other threads free.
 */
const MAX_CONCURRENT_HASHES = 1;
/** Hashes waiting past this many are refused at once rather than queued without bound. */
const MAX_QUEUED_HASHES = 256;
/** Verified secrets are remembered briefly so scrypt does not run on every request. */
const VERIFIED_TTL_MS = 60_000;
const MAX_VERIFIED = 10_000;

let running = 0;
const queue: (() => void)[] = [];

/** Thrown when too many hashes are already waiting: the caller answers 429 rather than queueing. */
export class HashingBusyError extends Error {
  constructor() {
    super('too many sign-ins are being checked at once');
  }
}

async function withHashSlot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT_HASHES) {
    if (queue.length >= MAX_QUEUED_HASHES) throw new HashingBusyError();
    await new Promise<void>((resolve) => queue.push(resolve));
  } else running++;
  try {
    return await work();
  } finally {
    const next = queue.shift();
    if (next) next();
    else running--;
  }
}

function scrypt(secret: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return withHashSlot(
    () =>
      new Promise((resolve, reject) =>
        scryptCallback(secret, salt, KEY_LENGTH, options, (error, key) =>
          error ? reject(error) : resolve(key),
        ),
      ),
  );
}

/** Hashes a password or key with scrypt: `scrypt$N$r$p$salt$hash`, base64url parts. */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(secret, salt, PARAMS);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64url'), key.toString('base64url')].join(
    '$',
  );
}

/** Checks a secret against a stored hash in constant time. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scrypt(secret, Buffer.from(salt, 'base64url'), {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

const verified = new Map<string, number>();

/**
 * `verifySecret` with a short memory of successes, keyed by a digest of (hash, secret): a client
 * sending Basic credentials on every request pays for scrypt once a minute, not every time. Only
 * successes are remembered, so a wrong guess always costs a full hash.
 */
export async function verifySecretCached(secret: string, stored: string): Promise<boolean> {
  const fingerprint = createHash('sha256').update(stored).update('\0').update(secret).digest('base64');
  const until = verified.get(fingerprint);
  if (until !== undefined && until > Date.now()) return true;
  if (!(await verifySecret(secret, stored))) return false;
  if (verified.size >= MAX_VERIFIED) verified.clear();
  verified.set(fingerprint, Date.now() + VERIFIED_TTL_MS);
  return true;
}

/** Compares two secrets in constant time (for secrets kept encrypted rather than hashed). */
export function secretsEqual(a: string, b: string): boolean {
  const left = createHash('sha256').update(a).digest();
  const right = createHash('sha256').update(b).digest();
  return timingSafeEqual(left, right);
}

/** A random secret for generated passwords and keys (URL-safe, 256 bits by default, never under 128). */
export function generateSecret(bytes = 32): string {
  return randomBytes(Math.max(16, bytes)).toString('base64url');
}
