import { createHash } from 'node:crypto';
import { OciError } from '../errors/oci.js';
import type { IpMatcher } from '../network/index.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { AuthStore, SignInResult, TokenRecord } from '../store/types.js';
import { API_KEY_PREFIX, type IdentityService, type Principal } from './identities.js';
import { HashingBusyError, secretsEqual, verifySecretCached } from './passwords.js';
import {
  ALL_PERMISSIONS,
  NO_PERMISSIONS,
  SYSTEM_SCOPE_MAPS,
  parseScopeMapActions,
  permissionsFromRoles,
  permissionsFromRules,
  type Permissions,
} from './permissions.js';
import type { FailedSignInLimiter } from './rate-limit.js';
import type { SignInLog } from './sign-in-log.js';
import { IdentityNetworkCache, tokenAllowedIpRanges, type IdentityNetworks } from './identity-networks.js';
import { SignInCache } from './sign-in-cache.js';
import { InvalidTokenError, type IdentityRef, type TokenService } from './tokens.js';

/** What sign-in needs to know about a registry (read from its record by the composition root). */
export interface RegistryAuthSettings {
  loginServer: string;
  adminUserEnabled: boolean;
  /** The admin user's passwords, decrypted. */
  adminPasswords: string[];
  /** anonymousPullEnabled, and the SKU allows it (Standard, Premium). */
  anonymousPull: boolean;
}

/** Looks a registry's sign-in settings up; undefined for a registry that does not exist. */
export type RegistryAuthSource = (registry: string) => Promise<RegistryAuthSettings | undefined>;

/** A signed-in data-plane caller and what it may do in the registry it signed in to. */
export interface DataPlaneIdentity {
  ref: IdentityRef;
  permissions: Permissions;
  trustedService: boolean;
  /** The identity's own address ranges (an API key's or token's `allowedIpRanges`), checked besides the registry's rules. */
  allowedNetworks?: IpMatcher | undefined;
}

/** ACR's user name for a refresh token sent as a password (`az acr login --expose-token`). */
export const REFRESH_TOKEN_USER = '00000000-0000-0000-0000-000000000000';

/** A verified credential, and until when it stays valid (an expiring token password). */
interface Verified {
  identity: DataPlaneIdentity;
  validUntil?: number | undefined;
}

const ANONYMOUS: IdentityRef = { kind: 'anonymous', id: '', name: '<anonymous>' };

export interface DataPlaneCredentialsOptions {
  identities: IdentityService;
  store: AuthStore;
  registrySettings: RegistryAuthSource;
  tokens: TokenService;
  limiter: FailedSignInLimiter;
  log: SignInLog;
  /** The node's change feed: a token, identity, role or scope-map change on any node drops what is cached. */
  changes: Pick<ChangeFeed, 'subscribe'>;
}

/**
 * Credential verification for the data plane: the admin user, repository-scoped tokens, management
 * users and API keys, and refresh tokens. Every attempt is counted by the limiter and the sign-in log.
 */
export class DataPlaneCredentials {
  private readonly networks: IdentityNetworkCache;
  private readonly verified = new SignInCache<Verified>();

  constructor(private readonly options: DataPlaneCredentialsOptions) {
    this.networks = new IdentityNetworkCache((registry, ref) => this.loadNetworks(registry, ref));
    this.unsubscribe = options.changes.subscribe((event) => {
      if (event.kind === 'token') this.networks.forgetToken(event.registry, event.name);
      else if (event.kind === 'identity') this.networks.forgetIdentity(event.id);
      else if (event.kind === 'roles' || event.kind === 'scopeMap' || event.kind === 'resync')
        this.networks.forgetAll();
      // A remembered sign-in was verified against an identity, its roles, a token, a scope map or a
      // registry's admin user: a change to any of them, on any node, forgets them all.
      if (event.kind !== 'ipSet' && event.kind !== 'manifest' && event.kind !== 'signingKey')
        this.verified.clear();
    });
  }

  private readonly unsubscribe: () => void;

  /** Stops following the change feed. */
  stop(): void {
    this.unsubscribe();
  }

  /**
   * The current address ranges of the identity a Bearer JWT names (cached; see IdentityNetworkCache);
   * null when that identity was deleted.
   */
  networksOf(registry: string, ref: IdentityRef): Promise<IdentityNetworks> {
    return this.networks.get(registry, ref);
  }

  private async loadNetworks(registry: string, ref: IdentityRef): Promise<IdentityNetworks> {
    if (ref.kind === 'token') {
      const token = await this.options.store.getToken(registry, ref.id);
      // A disabled token's JWTs end with it (on every node, once the change reaches the cache).
      if (!token || token.status !== 'enabled') return null;
      const ranges = tokenAllowedIpRanges(token);
      return ranges && this.options.identities.networksOf(ranges);
    }
    const principal = await this.options.identities.principalById(ref.id);
    return principal ? principal.allowedNetworks : null;
  }

  /** The registry's sign-in settings; a registry that does not exist has none (and no one signs in). */
  async settings(registry: string): Promise<RegistryAuthSettings | undefined> {
    return this.options.registrySettings(registry);
  }

  /** The anonymous caller: pull everywhere where anonymous pull is on, nothing otherwise. */
  anonymous(settings: RegistryAuthSettings | undefined): DataPlaneIdentity {
    return {
      ref: ANONYMOUS,
      permissions: settings?.anonymousPull
        ? { everywhere: ['pull'], rules: [], catalog: false }
        : NO_PERMISSIONS,
      trustedService: false,
    };
  }

  /** Checks Basic credentials for a registry; throws UNAUTHORIZED (401) or TOOMANYREQUESTS (429). */
  async signIn(
    registry: string,
    username: string,
    password: string,
    clientIp: string,
  ): Promise<DataPlaneIdentity> {
    const { limiter } = this.options;
    // Refresh tokens all share one user name, and API keys are their own account (any user name goes
    // with one), so their failures count per address only: otherwise anyone could lock every
    // `berth login --name` user, or every API-key caller, of a registry out with garbage secrets.
    const account =
      username === REFRESH_TOKEN_USER || password.startsWith(API_KEY_PREFIX)
        ? undefined
        : `${registry}/${username}`;
    const wait = limiter.retryAfter(clientIp, account);
    if (wait !== undefined) {
      this.record(registry, username, clientIp, 'rateLimited');
      throw tooManySignIns(wait);
    }
    // Refresh tokens expire on their own clock, and they are sent to /oauth2/token, not on every request.
    const key =
      username === REFRESH_TOKEN_USER ? undefined : this.verified.keyOf(registry, username, password);
    const remembered = key === undefined ? undefined : this.verified.get(key);
    if (remembered) {
      this.record(registry, remembered.identity.ref.name, clientIp, 'success');
      return remembered.identity;
    }
    const generation = this.verified.begin();
    let outcome: Verified | 'disabled' | undefined;
    try {
      outcome = await this.verify(registry, username, password);
    } catch (error) {
      if (error instanceof HashingBusyError) throw tooManySignIns(1);
      throw error;
    }
    if (outcome === undefined || outcome === 'disabled') {
      limiter.fail(clientIp, account);
      this.record(registry, username, clientIp, outcome === 'disabled' ? 'disabled' : 'failure');
      throw new OciError(
        'UNAUTHORIZED',
        outcome === 'disabled'
          ? `the credentials of '${username}' are disabled or expired`
          : 'invalid user name or password',
      );
    }
    if (key !== undefined) this.verified.set(key, outcome, generation, outcome.validUntil);
    this.record(registry, outcome.identity.ref.name, clientIp, 'success');
    return outcome.identity;
  }

  /** A Bearer API key sent straight to `/v2/` (trusted services do this). */
  async apiKey(registry: string, key: string, clientIp: string): Promise<DataPlaneIdentity> {
    return this.signIn(registry, 'apiKey', key, clientIp);
  }

  /** Re-checks the identity a refresh token names: it must still exist and hold the same credential. */
  async refresh(registry: string, refreshToken: string, clientIp: string): Promise<DataPlaneIdentity> {
    const identity = await this.fromRefreshToken(registry, refreshToken);
    if (!identity) {
      this.options.limiter.fail(clientIp, undefined);
      this.record(registry, 'refreshToken', clientIp, 'failure');
      throw new OciError('UNAUTHORIZED', 'the refresh token is invalid, expired or no longer valid');
    }
    this.record(registry, identity.ref.name, clientIp, 'success');
    return identity;
  }

  /** Records a sign-in attempt the caller decided itself (e.g. an anonymous token request). */
  record(registry: string, identity: string, clientIp: string, result: SignInResult): void {
    this.options.log.record({ registry, identity, clientIp, listener: 'data', result });
  }

  private async verify(
    registry: string,
    username: string,
    password: string,
  ): Promise<Verified | 'disabled' | undefined> {
    const settings = await this.settings(registry);
    if (!settings) return undefined;
    const wrap = (identity: DataPlaneIdentity | undefined) => identity && { identity };
    if (username === REFRESH_TOKEN_USER) return wrap(await this.fromRefreshToken(registry, password));
    if (password.startsWith(API_KEY_PREFIX)) {
      const principal = await this.options.identities.verifyApiKey(password);
      return wrap(principal && fromPrincipal(principal, registry));
    }
    if (username.toLowerCase() === registry && settings.adminUserEnabled) {
      // Checked against both passwords, every time, so the timing does not tell which one matched.
      let matched: string | undefined;
      for (const candidate of settings.adminPasswords)
        if (secretsEqual(candidate, password)) matched = candidate;
      if (matched !== undefined)
        return wrap({
          ref: { kind: 'admin', id: registry, name: registry, credential: fingerprint(matched) },
          permissions: ALL_PERMISSIONS,
          trustedService: false,
        });
    }
    const token = await this.options.store.getToken(registry, username);
    if (token) {
      for (const p of token.passwords) {
        if (!(await verifySecretCached(password, p.hash))) continue;
        if (token.status !== 'enabled' || (p.expiry && p.expiry.getTime() <= Date.now())) return 'disabled';
        return {
          identity: await this.fromToken(token, fingerprint(p.hash)),
          validUntil: p.expiry?.getTime(),
        };
      }
      // Not this token's password: a management user of the same name may still be meant.
    }
    const principal = await this.options.identities.verifyUser(username, password);
    return wrap(principal && fromPrincipal(principal, registry));
  }

  private async fromRefreshToken(
    registry: string,
    refreshToken: string,
  ): Promise<DataPlaneIdentity | undefined> {
    const settings = await this.settings(registry);
    if (!settings) return undefined;
    let ref: IdentityRef;
    try {
      ref = await this.options.tokens.verifyRefresh(refreshToken, settings.loginServer);
    } catch (error) {
      if (error instanceof InvalidTokenError) return undefined;
      throw error;
    }
    switch (ref.kind) {
      case 'admin':
        return settings.adminUserEnabled &&
          settings.adminPasswords.some((p) => fingerprint(p) === ref.credential)
          ? { ref, permissions: ALL_PERMISSIONS, trustedService: false }
          : undefined;
      case 'token': {
        const token = await this.options.store.getToken(registry, ref.id);
        const password = token?.passwords.find((p) => fingerprint(p.hash) === ref.credential);
        if (!token || !password || token.status !== 'enabled') return undefined;
        if (password.expiry && password.expiry.getTime() <= Date.now()) return undefined;
        return this.fromToken(token, ref.credential);
      }
      case 'user':
      case 'apiKey': {
        const principal = await this.options.identities.principalById(ref.id);
        return principal && fromPrincipal(principal, registry);
      }
      default:
        return undefined;
    }
  }

  private async fromToken(token: TokenRecord, credential: string | undefined): Promise<DataPlaneIdentity> {
    const system = SYSTEM_SCOPE_MAPS[token.scopeMap];
    const actions =
      system?.actions ?? (await this.options.store.getScopeMap(token.registry, token.scopeMap))?.actions;
    const permissions = actions ? permissionsFromRules(parseScopeMapActions(actions, true)) : NO_PERMISSIONS;
    const ranges = tokenAllowedIpRanges(token);
    return {
      ref: { kind: 'token', id: token.name, name: token.name, credential },
      permissions,
      trustedService: false,
      ...(ranges ? { allowedNetworks: this.options.identities.networksOf(ranges) } : {}),
    };
  }
}

/**
 * A management principal's data-plane permissions in one registry; undefined when no role covers it
 * (signing in to a registry one has no role on fails, as in ACR).
 */
export function fromPrincipal(principal: Principal, registry: string): DataPlaneIdentity | undefined {
  const roles = [...principal.roles, ...principal.dataPlaneRoles];
  if (!roles.some((r) => r.registry === '*' || r.registry === registry)) return undefined;
  return {
    ref: { kind: principal.kind, id: principal.id, name: principal.name },
    permissions: permissionsFromRoles(roles, registry),
    trustedService: principal.trustedService,
    ...(principal.allowedNetworks ? { allowedNetworks: principal.allowedNetworks } : {}),
  };
}

function fingerprint(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 22);
}

function tooManySignIns(retryAfterSeconds: number): OciError {
  return new OciError(
    'TOOMANYREQUESTS',
    `too many failed sign-ins; try again in ${retryAfterSeconds} seconds`,
    { retryAfter: retryAfterSeconds },
    { headers: { 'Retry-After': String(retryAfterSeconds) } },
  );
}
