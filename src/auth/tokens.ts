import { randomUUID } from 'node:crypto';
import {
  SignJWT,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type CryptoKey,
  type JWK,
  type JWTPayload,
  type JWTHeaderParameters,
} from 'jose';
import type { ChangeFeed } from '../store/change-feed.js';
import type { AuthStore } from '../store/types.js';
import type { ResourceAccess } from './scope.js';
import type { SecretBox } from './secret-box.js';

/** The one algorithm Berth signs with and accepts: a token naming any other (or `none`) is refused. */
export const TOKEN_ALG = 'ES256';
const ISSUER = 'berth';
const MAX_CACHED = 10_000;
/** A token naming an unknown kid reloads the key set from the store, at most this often. */
const RELOAD_INTERVAL_MS = 5_000;

/** Who a token speaks for, enough to re-check the identity on refresh. */
export interface IdentityRef {
  kind: 'user' | 'apiKey' | 'admin' | 'token' | 'anonymous';
  /** The identity's id (management identities), or its name (admin user, tokens). */
  id: string;
  name: string;
  /** A fingerprint of the credential signed in with, so a renewed password ends its refresh tokens. */
  credential?: string | undefined;
}

/** A verified access token's content. */
export interface VerifiedAccess {
  identity: IdentityRef;
  access: ResourceAccess[];
  /** What the token request asked for (so a client asking again can be told apart from a refusal). */
  asked: ResourceAccess[];
  /** The repositories the catalog may show (scope map patterns); undefined for all. */
  catalog?: string[] | undefined;
  expiresAt: number;
}

/** A stored secret was sealed under another key file than this node's (start-up stops with it). */
export class SecretKeyMismatchError extends Error {}

/** Thrown for any token that does not verify; the message says why (for logs, not the client). */
export class InvalidTokenError extends Error {}

interface SigningKey {
  kid: string;
  privateKey?: CryptoKey;
  publicKey: CryptoKey;
}

/**
 * Issues and verifies the data plane's JWTs. The signing key pair lives in the store, its private half
 * sealed with the key file, so every node signs and verifies with the same keys; each verified token
 * is remembered until it expires, so a client sending the same token on every request pays once.
 */
export class TokenService {
  private keys = new Map<string, SigningKey>();
  private current: SigningKey | undefined;
  private lastReload = 0;
  /**
   * Verified access tokens by their signature (what tells two tokens apart, a tenth of the whole: the key
   * is hashed on every request), each checked against the whole token on a hit.
   */
  private readonly verified = new Map<string, { token: string; audience: string; result: VerifiedAccess }>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly store: AuthStore,
    private readonly box: SecretBox,
    readonly options: { accessTtlSeconds: number; refreshTtlSeconds: number },
    /** The node's change feed: a key added on any node is loaded here at once. */
    private readonly changes?: ChangeFeed,
  ) {}

  /** Loads the key set, creating the first key pair when there is none, and follows key changes. */
  async start(): Promise<void> {
    this.unsubscribe = this.changes?.subscribe((event) => {
      if (event.kind !== 'signingKey' && event.kind !== 'resync') return;
      // A failed reload keeps the keys already loaded; an unknown kid tries again later.
      this.reload().catch(() => undefined);
    });
    await this.reload();
    if (this.current) return;
    const { privateKey, publicKey } = await generateKeyPair(TOKEN_ALG, { extractable: true });
    const kid = randomUUID();
    await this.store.addSigningKey({
      kid,
      alg: TOKEN_ALG,
      publicJwk: JSON.stringify(await exportJWK(publicKey)),
      sealedPrivateJwk: this.box.seal(JSON.stringify(await exportJWK(privateKey))),
      createdAt: new Date(),
    });
    // Another node may have created one at the same moment; the store's oldest key wins either way,
    // and a node that chose its own first moves to the oldest on the other's signingKey event (the
    // store publishes it).
    await this.reload();
    if (!this.current) throw new Error('no token signing key could be loaded');
  }

  /** Stops following key changes. */
  stop(): void {
    this.unsubscribe?.();
  }

  /** Signs an access token for `audience` (a login server) carrying the granted `access`. */
  async issueAccess(
    audience: string,
    identity: IdentityRef,
    access: ResourceAccess[],
    asked: ResourceAccess[] = access,
    catalog?: string[],
  ): Promise<{ token: string; expiresIn: number; issuedAt: Date }> {
    const issuedAt = new Date();
    const expiresIn = this.options.accessTtlSeconds;
    const claims = { access, asked, use: 'access', ...(catalog ? { cat: catalog } : {}) };
    const token = await this.sign(audience, identity, claims, expiresIn, issuedAt);
    return { token, expiresIn, issuedAt };
  }

  /** Signs a refresh token (`access_type=offline`, `berth registry login`). */
  async issueRefresh(audience: string, identity: IdentityRef, ttlSeconds?: number): Promise<string> {
    return this.sign(audience, identity, { use: 'refresh' }, ttlSeconds ?? this.options.refreshTtlSeconds);
  }

  /** Verifies an access token for `audience`; throws InvalidTokenError. */
  async verifyAccess(token: string, audience: string): Promise<VerifiedAccess> {
    const signature = token.slice(token.lastIndexOf('.') + 1);
    const cached = this.verified.get(signature);
    if (cached && cached.token === token && cached.result.expiresAt > Date.now()) {
      if (cached.audience !== audience) throw new InvalidTokenError('token is for another registry');
      return cached.result;
    }
    const payload = await this.verify(token, audience, 'access');
    const result: VerifiedAccess = {
      identity: identityOf(payload),
      access: accessOf(payload.access),
      asked: accessOf(payload.asked),
      catalog: Array.isArray(payload.cat)
        ? payload.cat.filter((p): p is string => typeof p === 'string')
        : undefined,
      expiresAt: (payload.exp ?? 0) * 1000,
    };
    if (this.verified.size >= MAX_CACHED) this.evictExpired();
    this.verified.set(signature, { token, audience, result });
    return result;
  }

  /** Verifies a refresh token for `audience` and returns whom it speaks for. */
  async verifyRefresh(token: string, audience: string): Promise<IdentityRef> {
    return identityOf(await this.verify(token, audience, 'refresh'));
  }

  private async sign(
    audience: string,
    identity: IdentityRef,
    claims: Record<string, unknown>,
    ttlSeconds: number,
    issuedAt = new Date(),
  ): Promise<string> {
    const key = this.current;
    if (!key?.privateKey) throw new Error('token service not started');
    const iat = Math.floor(issuedAt.getTime() / 1000);
    return new SignJWT({
      ...claims,
      idt: {
        kind: identity.kind,
        id: identity.id,
        ...(identity.credential ? { c: identity.credential } : {}),
      },
    })
      .setProtectedHeader({ alg: TOKEN_ALG, kid: key.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(identity.name)
      .setAudience(audience)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + ttlSeconds)
      .setJti(randomUUID())
      .sign(key.privateKey);
  }

  private async verify(token: string, audience: string, use: 'access' | 'refresh'): Promise<JWTPayload> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, (header) => this.keyFor(header), {
        algorithms: [TOKEN_ALG],
        issuer: ISSUER,
        audience,
      }));
    } catch (error) {
      throw new InvalidTokenError((error as Error).message);
    }
    if (payload.use !== use) throw new InvalidTokenError(`not an ${use} token`);
    return payload;
  }

  private async keyFor(header: JWTHeaderParameters): Promise<CryptoKey> {
    const kid = header.kid;
    if (!kid) throw new InvalidTokenError('token has no kid');
    let key = this.keys.get(kid);
    if (!key && Date.now() - this.lastReload > RELOAD_INTERVAL_MS) {
      await this.reload();
      key = this.keys.get(kid);
    }
    if (!key) throw new InvalidTokenError('token signed by an unknown key');
    return key.publicKey;
  }

  private async reload(): Promise<void> {
    this.lastReload = Date.now();
    const records = await this.store.listSigningKeys();
    const keys = new Map<string, SigningKey>();
    for (const record of records) {
      if (record.alg !== TOKEN_ALG) continue;
      const publicKey = (await importJWK(JSON.parse(record.publicJwk) as JWK, TOKEN_ALG)) as CryptoKey;
      let sealed: string;
      try {
        sealed = this.box.open(record.sealedPrivateJwk);
      } catch {
        throw new SecretKeyMismatchError(
          `token signing key ${record.kid} cannot be decrypted: this node's key file is not the one the other nodes sealed it with; every node must use the same key file (secretKeyFile / BERTH_SECRET_KEY_FILE)`,
        );
      }
      const privateKey = (await importJWK(JSON.parse(sealed) as JWK, TOKEN_ALG)) as CryptoKey;
      keys.set(record.kid, { kid: record.kid, publicKey, privateKey });
    }
    this.keys = keys;
    // The oldest key signs; ties (two nodes' first starts in one millisecond) go to the smaller kid, so
    // every node picks the same one whatever order its store returns them in.
    const oldest = records
      .filter((r) => r.alg === TOKEN_ALG)
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.kid < b.kid ? -1 : 1))[0];
    this.current = oldest && keys.get(oldest.kid);
  }

  private evictExpired(): void {
    const now = Date.now();
    for (const [token, entry] of this.verified)
      if (entry.result.expiresAt <= now) this.verified.delete(token);
    if (this.verified.size >= MAX_CACHED) this.verified.clear();
  }
}

function identityOf(payload: JWTPayload): IdentityRef {
  const idt = payload.idt as { kind?: IdentityRef['kind']; id?: string; c?: string } | undefined;
  if (!idt?.kind || typeof idt.id !== 'string' || typeof payload.sub !== 'string')
    throw new InvalidTokenError('token names no identity');
  return { kind: idt.kind, id: idt.id, name: payload.sub, credential: idt.c };
}

function accessOf(value: unknown): ResourceAccess[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((entry: unknown) => {
    const e = entry as Partial<ResourceAccess>;
    return typeof e.type === 'string' && typeof e.name === 'string' && Array.isArray(e.actions)
      ? [{ type: e.type, name: e.name, actions: e.actions.filter((a): a is string => typeof a === 'string') }]
      : [];
  });
}
