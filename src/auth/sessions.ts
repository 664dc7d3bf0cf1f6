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

interface Session {
  principalId: string;
  createdAt: number;
  lastUsed: number;
}

/**
 * Browser sessions of the portal. The browser holds an opaque random token (in an HttpOnly cookie),
 * the server only its hash, mapped to an identity id; the identity's roles are read again on every
 * request, so a changed role or a deleted account applies at once. Kept in memory: a restart signs
 * everyone out, which is the safe direction.
 */
export class PortalSessions {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts a session for an identity; returns the token to hand to the browser once. */
  create(principalId: string): { token: string; expiresAt: Date } {
    this.sweep();
    if (this.sessions.size >= this.limits.maxSessions) {
      // Map order is insertion order, so the first key is the oldest session.
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const token = randomBytes(32).toString('base64url');
    const at = this.now();
    this.sessions.set(hashToken(token), { principalId, createdAt: at, lastUsed: at });
    return { token, expiresAt: new Date(at + Math.min(this.limits.idleMs, this.limits.absoluteMs)) };
  }

  /** The identity id of a live session (and marks it used), or undefined when unknown or expired. */
  resolve(token: string): string | undefined {
    const key = hashToken(token);
    const session = this.sessions.get(key);
    if (!session) return undefined;
    const at = this.now();
    if (this.expired(session, at)) {
      this.sessions.delete(key);
      return undefined;
    }
    session.lastUsed = at;
    return session.principalId;
  }

  /** Ends a session (sign out). */
  revoke(token: string): void {
    this.sessions.delete(hashToken(token));
  }

  /** How many sessions are live (for tests and metrics). */
  get size(): number {
    return this.sessions.size;
  }

  private expired(session: Session, at: number): boolean {
    return at - session.lastUsed > this.limits.idleMs || at - session.createdAt > this.limits.absoluteMs;
  }

  private sweep(): void {
    const at = this.now();
    for (const [key, session] of this.sessions) if (this.expired(session, at)) this.sessions.delete(key);
  }
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
