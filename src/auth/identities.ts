import { randomUUID } from 'node:crypto';
import { ManagementError } from '../errors/management.js';
import type {
  AuthStore,
  DataPlaneRoleAssignment,
  DataPlaneRoleName,
  IdentityRecord,
  IdentityStore,
  RoleAssignment,
  RoleName,
} from '../store/types.js';
import { compileIpRules, type IpMatcher, type NetworkIdentity } from '../network/index.js';
import { generateSecret, HashingBusyError, hashSecret, verifySecretCached } from './passwords.js';
import type { FailedSignInLimiter } from './rate-limit.js';
import type { SignInLog } from './sign-in-log.js';

export const ROLE_NAMES: readonly RoleName[] = ['Owner', 'Contributor', 'Reader'];
const ROLE_RANK: Record<RoleName, number> = { Reader: 1, Contributor: 2, Owner: 3 };

/** An authenticated caller of the management API and what it may do. */
export interface Principal {
  id: string;
  name: string;
  kind: IdentityRecord['kind'];
  trustedService: boolean;
  roles: RoleAssignment[];
  /** Data-plane-only roles (AcrPull, AcrPush, AcrDelete). */
  dataPlaneRoles: DataPlaneRoleAssignment[];
  /** The identity's own address ranges, checked in addition to any registry's rules. */
  allowedNetworks?: IpMatcher;
}

export const DATA_PLANE_ROLE_NAMES: readonly DataPlaneRoleName[] = ['AcrPull', 'AcrPush', 'AcrDelete'];

/** What the sign-in checks need besides the stores (absent in unit-level uses). */
export interface SignInGuards {
  limiter: FailedSignInLimiter;
  log: SignInLog;
}

/** The owner account's name, created on first start. */
export const OWNER_NAME = 'admin';
/** Every API key starts with this, so a password field holding one is recognised. */
export const API_KEY_PREFIX = 'berth_';

/** Accounts, API keys, authentication and role checks for the management API. */
export class IdentityService {
  /** Identities' address ranges, compiled once per distinct list. */
  private readonly compiledNetworks = new Map<string, IpMatcher>();

  constructor(
    private readonly store: IdentityStore,
    private readonly auth?: AuthStore,
    private readonly guards?: SignInGuards,
  ) {}

  /**
   * Creates the owner account on first start. Returns the generated password when Berth chose it
   * (the caller prints it once), undefined when the account existed or the password was given.
   */
  async bootstrapOwner(password: string | undefined): Promise<string | undefined> {
    if ((await this.store.countIdentities()) > 0) return undefined;
    const secret = password ?? generateSecret(18);
    const id = randomUUID();
    await this.store.createIdentity({
      id,
      name: OWNER_NAME,
      kind: 'user',
      secretHash: await hashSecret(secret),
      trustedService: false,
      createdAt: new Date(),
    });
    await this.store.setRole({ principalId: id, registry: '*', role: 'Owner' });
    return password === undefined ? secret : undefined;
  }

  /**
   * Authenticates a management `Authorization` header value (Basic user:password, or Bearer API key).
   * Failures count against the client address and account; past the limit the answer is 429.
   */
  async authenticate(authorization: string | undefined, clientIp = 'unknown'): Promise<Principal> {
    if (!authorization)
      throw unauthenticated('Authentication is required: send Basic credentials or a Bearer API key.');
    const space = authorization.indexOf(' ');
    const scheme = authorization.slice(0, space).toLowerCase();
    const value = authorization.slice(space + 1).trim();
    if (scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0) throw unauthenticated('Malformed Basic credentials.');
      const name = decoded.slice(0, colon);
      return this.signIn(clientIp, name, () => this.verifyUser(name, decoded.slice(colon + 1)));
    }
    if (scheme === 'bearer' && value.startsWith(API_KEY_PREFIX)) {
      return this.signIn(clientIp, undefined, () => this.verifyApiKey(value));
    }
    throw unauthenticated('Unsupported authorization scheme: use Basic or Bearer.');
  }

  /** A user's password check, for the data plane too; undefined when wrong (never says which part). */
  async verifyUser(name: string, password: string): Promise<Principal | undefined> {
    const identity = await this.store.findIdentityByName(name);
    if (!identity || identity.kind !== 'user') return undefined;
    return (await verifySecretCached(password, identity.secretHash)) ? this.principalOf(identity) : undefined;
  }

  /** An API key's check; undefined when it is not a valid key. */
  async verifyApiKey(key: string): Promise<Principal | undefined> {
    if (!key.startsWith(API_KEY_PREFIX)) return undefined;
    const id = key.slice(API_KEY_PREFIX.length, API_KEY_PREFIX.length + 36);
    const identity = await this.store.getIdentity(id);
    if (!identity || identity.kind !== 'apiKey') return undefined;
    return (await verifySecretCached(key, identity.secretHash)) ? this.principalOf(identity) : undefined;
  }

  /** The principal of an identity id (refresh tokens re-check that it still exists). */
  async principalById(id: string): Promise<Principal | undefined> {
    const identity = await this.store.getIdentity(id);
    return identity && this.principalOf(identity);
  }

  private async signIn(
    clientIp: string,
    account: string | undefined,
    verify: () => Promise<Principal | undefined>,
  ): Promise<Principal> {
    const wait = this.guards?.limiter.retryAfter(clientIp, account);
    const record = (identity: string, result: 'success' | 'failure' | 'rateLimited') =>
      this.guards?.log.record({ registry: '*', identity, clientIp, listener: 'management', result });
    if (wait !== undefined) {
      record(account ?? 'apiKey', 'rateLimited');
      throw tooManySignIns(wait);
    }
    let principal: Principal | undefined;
    try {
      principal = await verify();
    } catch (error) {
      if (error instanceof HashingBusyError) throw tooManySignIns(1);
      throw error;
    }
    if (!principal) {
      this.guards?.limiter.fail(clientIp, account);
      record(account ?? 'apiKey', 'failure');
      throw unauthenticated(account === undefined ? 'Invalid API key.' : 'Invalid user name or password.');
    }
    record(principal.name, 'success');
    return principal;
  }

  /** Creates an API key with a role on a registry (or `*`); the key is returned once, never stored. */
  async createApiKey(
    name: string,
    role: RoleName,
    registry: string,
    trustedService = false,
    allowedNetworks?: string[],
  ): Promise<{ id: string; key: string }> {
    const id = randomUUID();
    const key = `${API_KEY_PREFIX}${id}_${generateSecret()}`;
    const created = await this.store.createIdentity({
      id,
      name,
      kind: 'apiKey',
      secretHash: await hashSecret(key),
      trustedService,
      createdAt: new Date(),
      ...(allowedNetworks ? { allowedNetworks } : {}),
    });
    if (!created)
      throw new ManagementError('Conflict', `An identity named '${name}' already exists.`, {
        target: 'name',
      });
    await this.store.setRole({ principalId: id, registry, role });
    return { id, key };
  }

  /** Creates a user account with a role. */
  async createUser(name: string, password: string, role: RoleName, registry: string): Promise<string> {
    const id = randomUUID();
    const created = await this.store.createIdentity({
      id,
      name,
      kind: 'user',
      secretHash: await hashSecret(password),
      trustedService: false,
      createdAt: new Date(),
    });
    if (!created)
      throw new ManagementError('Conflict', `An identity named '${name}' already exists.`, {
        target: 'name',
      });
    await this.store.setRole({ principalId: id, registry, role });
    return id;
  }

  async listApiKeys(): Promise<
    { id: string; name: string; createdAt: Date; roles: RoleAssignment[]; allowedNetworks?: string[] }[]
  > {
    const keys = await this.store.listIdentities('apiKey');
    return Promise.all(
      keys.map(async (k) => ({
        id: k.id,
        name: k.name,
        createdAt: k.createdAt,
        roles: await this.store.rolesOf(k.id),
        ...(k.allowedNetworks ? { allowedNetworks: k.allowedNetworks } : {}),
      })),
    );
  }

  /** An API key's network conditions by name, for the what-if API (ResourceNotFound otherwise). */
  async networkIdentity(name: string): Promise<NetworkIdentity> {
    const identity = await this.store.findIdentityByName(name);
    if (identity?.kind !== 'apiKey')
      throw new ManagementError('ResourceNotFound', `API key '${name}' was not found.`);
    return {
      trustedService: identity.trustedService,
      name: identity.name,
      ...(identity.allowedNetworks ? { allowedNetworks: this.networksOf(identity.allowedNetworks) } : {}),
    };
  }

  /** Address ranges compiled once per distinct list (API keys' and tokens' alike). */
  networksOf(ranges: string[]): IpMatcher {
    const key = ranges.join(',');
    let matcher = this.compiledNetworks.get(key);
    if (!matcher) {
      if (this.compiledNetworks.size > 1_000) this.compiledNetworks.clear();
      matcher = compileIpRules(ranges);
      this.compiledNetworks.set(key, matcher);
    }
    return matcher;
  }

  /** Deletes an API key; a user account's id is not an API key, so it is ResourceNotFound. */
  async deleteApiKey(id: string): Promise<void> {
    const identity = await this.store.getIdentity(id);
    if (identity?.kind !== 'apiKey')
      throw new ManagementError('ResourceNotFound', `API key '${id}' was not found.`);
    await this.deleteIdentity(id);
  }

  async deleteIdentity(id: string): Promise<void> {
    // The store announces the deletion: every node's caches of the identity drop it.
    const deleted = await this.store.deleteIdentity(id);
    if (!deleted) throw new ManagementError('ResourceNotFound', `Identity '${id}' was not found.`);
    for (const role of (await this.auth?.dataPlaneRolesOf(id)) ?? [])
      await this.auth?.removeDataPlaneRole(role);
  }

  /** Gives a principal (by id or name) a role on a registry; a data-plane role is added to the others. */
  async assignRole(
    principal: string,
    registry: string,
    role: RoleName | DataPlaneRoleName,
  ): Promise<{ principalId: string; registry: string; role: RoleName | DataPlaneRoleName }> {
    const identity = await this.find(principal);
    if (isDataPlaneRole(role)) {
      if (!this.auth) throw new Error('data-plane roles need the auth store');
      const assignment = { principalId: identity.id, registry, role };
      await this.auth.addDataPlaneRole(assignment);
      return assignment;
    }
    const assignment = { principalId: identity.id, registry, role };
    await this.store.setRole(assignment);
    return assignment;
  }

  /** Removes a principal's role on a registry (a management role, or one data-plane role). */
  async removeRole(principal: string, registry: string, role: RoleName | DataPlaneRoleName): Promise<void> {
    const identity = await this.find(principal);
    const removed = isDataPlaneRole(role)
      ? await this.auth?.removeDataPlaneRole({ principalId: identity.id, registry, role })
      : (await this.store.rolesOf(identity.id)).some((r) => r.registry === registry && r.role === role) &&
        (await this.store.removeRole(identity.id, registry));
    if (!removed)
      throw new ManagementError(
        'ResourceNotFound',
        `'${identity.name}' has no ${role} role assignment on registry '${registry}'.`,
      );
  }

  /** Every role assignment on a registry (and on `*`), with the principal's name. */
  async roleAssignmentsOn(
    registry: string,
  ): Promise<{ principalId: string; principalName: string; registry: string; role: string }[]> {
    const result: { principalId: string; principalName: string; registry: string; role: string }[] = [];
    for (const identity of await this.store.listIdentities()) {
      const roles = [
        ...(await this.store.rolesOf(identity.id)),
        ...((await this.auth?.dataPlaneRolesOf(identity.id)) ?? []),
      ];
      for (const r of roles)
        if (r.registry === registry || r.registry === '*')
          result.push({
            principalId: identity.id,
            principalName: identity.name,
            registry: r.registry,
            role: r.role,
          });
    }
    return result;
  }

  private async find(principal: string): Promise<IdentityRecord> {
    const identity =
      (await this.store.getIdentity(principal)) ?? (await this.store.findIdentityByName(principal));
    if (!identity) throw new ManagementError('ResourceNotFound', `Principal '${principal}' was not found.`);
    return identity;
  }

  /** Throws AuthorizationFailed unless the principal holds at least `role` on the registry (or on `*`). */
  authorize(principal: Principal, registry: string, role: RoleName): void {
    if (rankOn(principal, registry) >= ROLE_RANK[role]) return;
    throw new ManagementError(
      'AuthorizationFailed',
      `'${principal.name}' does not have the ${role} role needed for this operation on ${registry === '*' ? 'registries' : `registry '${registry}'`}.`,
    );
  }

  /** Whether the principal holds any role on the registry. */
  canSee(principal: Principal, registry: string): boolean {
    return rankOn(principal, registry) > 0;
  }

  private async principalOf(identity: IdentityRecord): Promise<Principal> {
    return {
      id: identity.id,
      name: identity.name,
      kind: identity.kind,
      trustedService: identity.trustedService,
      roles: await this.store.rolesOf(identity.id),
      dataPlaneRoles: (await this.auth?.dataPlaneRolesOf(identity.id)) ?? [],
      ...(identity.allowedNetworks ? { allowedNetworks: this.networksOf(identity.allowedNetworks) } : {}),
    };
  }
}

/** Whether a role name is one of the data-plane-only roles. */
export function isDataPlaneRole(role: string): role is DataPlaneRoleName {
  return (DATA_PLANE_ROLE_NAMES as readonly string[]).includes(role);
}

function tooManySignIns(retryAfterSeconds: number): ManagementError {
  return new ManagementError(
    'TooManyRequests',
    `Too many failed sign-ins; try again in ${retryAfterSeconds} seconds.`,
    { retryAfter: retryAfterSeconds },
  );
}

function rankOn(principal: Principal, registry: string): number {
  let rank = 0;
  for (const assignment of principal.roles) {
    if (assignment.registry === '*' || assignment.registry === registry)
      rank = Math.max(rank, ROLE_RANK[assignment.role]);
  }
  return rank;
}

function unauthenticated(message: string): ManagementError {
  return new ManagementError('AuthenticationFailed', message);
}
