import { createHash, randomBytes } from 'node:crypto';

/** How long a portal session lasts: idle and absolute limits, and how many may exist at once. */
export interface SessionLimits {
  idleMs: number;
  absoluteMs: number;
  maxSessions: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  idleMs: 60 * 60_000,
  absoluteMs: 12 * 60 * 60_000,
  maxSessions: 10_000,
};

/** A stored session: whose it is and when it started and was last used (epoch ms). */
export interface PortalSession {
  principalId: string;
  createdAt: number;
  lastUsed: number;
}

/** Where sessions live, keyed by the token's hash: in memory (one process) or in the shared database. */
export interface SessionStore {
  insert(tokenHash: string, session: PortalSession): Promise<void>;
  get(tokenHash: string): Promise<PortalSession | undefined>;
  /** Moves `lastUsed` forward (never back). */
  touch(tokenHash: string, lastUsed: number): Promise<void>;
  delete(tokenHash: string): Promise<void>;
  /** Removes sessions last used before `usedBefore` or created before `createdBefore`. */
  deleteExpired(usedBefore: number, createdBefore: number): Promise<void>;
  /** Removes the oldest sessions until at most `keep` remain. */
  trim(keep: number): Promise<void>;
  count(): Promise<number>;
}

/** Sessions in this process's memory (tests, and a store-less composition). */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, PortalSession>();

  async insert(tokenHash: string, session: PortalSession): Promise<void> {
    this.sessions.set(tokenHash, { ...session });
  }

  async get(tokenHash: string): Promise<PortalSession | undefined> {
    const session = this.sessions.get(tokenHash);
    return session && { ...session };
  }

  async touch(tokenHash: string, lastUsed: number): Promise<void> {
    const session = this.sessions.get(tokenHash);
    if (session && session.lastUsed < lastUsed) session.lastUsed = lastUsed;
  }

  async delete(tokenHash: string): Promise<void> {
    this.sessions.delete(tokenHash);
  }

  async deleteExpired(usedBefore: number, createdBefore: number): Promise<void> {
    for (const [key, session] of this.sessions)
      if (session.lastUsed < usedBefore || session.createdAt < createdBefore) this.sessions.delete(key);
  }

  async trim(keep: number): Promise<void> {
    // Map order is insertion order, so the first keys are the oldest sessions.
    for (const key of this.sessions.keys()) {
      if (this.sessions.size <= keep) break;
      this.sessions.delete(key);
    }
  }

  async count(): Promise<number> {
    return this.sessions.size;
  }
}

/**
 * Browser sessions of the portal. The browser holds an opaque random token (in an HttpOnly cookie),
 * the server only its hash, mapped to an identity id; the identity's roles are read again on every
 * request, so a changed role or a deleted account applies at once. Composed with the SQL store, the
 * sessions live in the database every node shares, so the load balancer may send a browser to any node.
 */
export class PortalSessions {
  constructor(
    private readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS,
    private readonly now: () => number = Date.now,
    private readonly store: SessionStore = new MemorySessionStore(),
  ) {}

  /** Starts a session for an identity; returns the token to hand to the browser once. */
  async create(principalId: string): Promise<{ token: string; expiresAt: Date }> {
    const at = this.now();
    await this.store.deleteExpired(at - this.limits.idleMs, at - this.limits.absoluteMs);
    await this.store.trim(this.limits.maxSessions - 1);
    const token = randomBytes(32).toString('base64url');
    await this.store.insert(hashToken(token), { principalId, createdAt: at, lastUsed: at });
    return { token, expiresAt: new Date(at + Math.min(this.limits.idleMs, this.limits.absoluteMs)) };
  }

  /** The identity id of a live session (and marks it used), or undefined when unknown or expired. */
  async resolve(token: string): Promise<string | undefined> {
    const key = hashToken(token);
    const session = await this.store.get(key);
    if (!session) return undefined;
    const at = this.now();
    if (this.expired(session, at)) {
      await this.store.delete(key);
      return undefined;
    }
    // A write per request would be the portal's cost on a shared database; the idle limit only needs
    // the last use to within a small part of itself.
    if (at - session.lastUsed >= Math.min(60_000, this.limits.idleMs / 10)) await this.store.touch(key, at);
    return session.principalId;
  }

  /** Ends a session (sign out). */
  async revoke(token: string): Promise<void> {
    await this.store.delete(hashToken(token));
  }

  /** How many sessions are stored (for tests and metrics). */
  count(): Promise<number> {
    return this.store.count();
  }

  private expired(session: PortalSession, at: number): boolean {
    return at - session.lastUsed > this.limits.idleMs || at - session.createdAt > this.limits.absoluteMs;
  }
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
