import * as crypto from 'node:crypto';

const MAX_ENTRIES = 10_000;

/**
 * Credentials sent on every request (Basic, Bearer API keys) verified once and remembered for a few
 * seconds, as a Bearer JWT is once verified: without it each manifest GET read the identity, its token
 * or its roles from the store. Keyed by a hash of registry, user name and secret, so only the exact
 * credential that was verified hits, and a wrong password always takes the full path (and its limits).
 *
 * Every change this node sees to identities, roles, tokens, scope maps or registry settings clears the
 * cache (`clear`), and a verification that raced such a change is not kept; `ttlMs` bounds how long a
 * change made elsewhere (another node) takes to apply, as it does for identities' address ranges.
 */
export class SignInCache<T> {
  private readonly entries = new Map<string, { value: T; until: number }>();
  /** Bumped by every change, so a verification that started before one does not keep what it read. */
  private generation = 0;

  constructor(private readonly ttlMs = 10_000) {}

  /** The key of a credential (a hash: the secret itself is never kept). */
  keyOf(registry: string, username: string, secret: string): string {
    // JSON keeps the three apart whatever characters they hold.
    const text = JSON.stringify([registry, username, secret]);
    // The one-shot `hash` (Node ≥ 20.12) is four times cheaper than a Hash object, which showed in the
    // profile of a Basic-authenticated GET.
    return typeof crypto.hash === 'function'
      ? crypto.hash('sha256', text, 'base64')
      : crypto.createHash('sha256').update(text).digest('base64');
  }

  /** The remembered verification of `key`, while it is fresh. */
  get(key: string, now = Date.now()): T | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.until > now) return hit.value;
    this.entries.delete(key);
    return undefined;
  }

  /** The generation to hand back to `set`, taken before verifying. */
  begin(): number {
    return this.generation;
  }

  /** Remembers a verification, unless a change arrived since `generation`; at most until `validUntil`. */
  set(key: string, value: T, generation: number, validUntil = Infinity, now = Date.now()): void {
    if (generation !== this.generation) return;
    const until = Math.min(now + this.ttlMs, validUntil);
    if (until <= now) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, { value, until });
  }

  /** Forgets everything (something a verification depends on changed). */
  clear(): void {
    this.generation++;
    this.entries.clear();
  }
}
