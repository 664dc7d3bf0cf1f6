/** Limits of the failed sign-in limiter. */
export interface SignInLimits {
  /** Failures allowed per client address within the window. */
  maxFailuresPerAddress: number;
  /** Failures allowed per account (user name) within the window. */
  maxFailuresPerAccount: number;
  windowSeconds: number;
}

export const DEFAULT_SIGN_IN_LIMITS: SignInLimits = {
  maxFailuresPerAddress: 30,
  maxFailuresPerAccount: 10,
  windowSeconds: 60,
};

/** Keys tracked at most; past this the oldest window is forgotten first. */
const MAX_KEYS = 50_000;

/**
 * Counts failed sign-ins per client address and per account in fixed windows. Once either is over its
 * limit, sign-ins for that key are refused (without checking the password) until the window ends.
 * Shared by both listeners, so a guesser cannot switch from the data plane to the management API.
 */
export class FailedSignInLimiter {
  private readonly failures = new Map<string, { count: number; until: number }>();

  constructor(private readonly limits: SignInLimits) {}

  /** Seconds until the client may try again, or undefined when it may try now. */
  retryAfter(clientIp: string, account: string | undefined): number | undefined {
    const now = Date.now();
    let wait = 0;
    for (const [key, max] of this.keys(clientIp, account)) {
      const entry = this.failures.get(key);
      if (entry && entry.until > now && entry.count >= max) wait = Math.max(wait, entry.until - now);
    }
    return wait > 0 ? Math.ceil(wait / 1000) : undefined;
  }

  /** Records a failed sign-in. */
  fail(clientIp: string, account: string | undefined): void {
    const now = Date.now();
    for (const [key] of this.keys(clientIp, account)) {
      const entry = this.failures.get(key);
      if (entry && entry.until > now) entry.count++;
      else {
        if (this.failures.size >= MAX_KEYS) this.evict(now);
        this.failures.set(key, { count: 1, until: now + this.limits.windowSeconds * 1000 });
      }
    }
  }

  private keys(clientIp: string, account: string | undefined): [string, number][] {
    const keys: [string, number][] = [[`ip:${clientIp}`, this.limits.maxFailuresPerAddress]];
    if (account !== undefined) keys.push([`account:${account}`, this.limits.maxFailuresPerAccount]);
    return keys;
  }

  private evict(now: number): void {
    for (const [key, entry] of this.failures) if (entry.until <= now) this.failures.delete(key);
    // Still full: drop the oldest half (Map keeps insertion order).
    if (this.failures.size >= MAX_KEYS) {
      let drop = this.failures.size / 2;
      for (const key of this.failures.keys()) {
        if (drop-- <= 0) break;
        this.failures.delete(key);
      }
    }
  }
}
