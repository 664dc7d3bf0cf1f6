import { createHash, randomUUID } from 'node:crypto';
import { ManagementError } from '../errors/management.js';
import type { IdentityRecord, IdentityStore, RoleAssignment, RoleName } from '../store/types.js';
import { compileIpRules, type IpMatcher, type NetworkIdentity } from '../network/index.js';
import { generateSecret, hashSecret, verifySecret } from './passwords.js';

export const ROLE_NAMES: readonly RoleName[] = ['Owner', 'Contributor', 'Reader'];
const ROLE_RANK: Record<RoleName, number> = { Reader: 1, Contributor: 2, Owner: 3 };

/** An authenticated caller of the management API and what it may do. */
export interface Principal {
  id: string;
  name: string;
  kind: IdentityRecord['kind'];
  trustedService: boolean;
  roles: RoleAssignment[];
  /** The identity's own address ranges, checked in addition to any registry's rules. */
  allowedNetworks?: IpMatcher;
}

/** The owner account's name, created on first start. */
export const OWNER_NAME = 'admin';
const API_KEY_PREFIX = 'berth_';
/** Verified secrets are remembered briefly so scrypt does not run on every API call. */
const VERIFIED_TTL_MS = 60_000;

/** Accounts, API keys, authentication and role checks for the management API. */
export class IdentityService {
  private readonly verified = new Map<string, { id: string; until: number }>();
  /** Identities' address ranges, compiled once per distinct list. */
  private readonly compiledNetworks = new Map<string, IpMatcher>();

  constructor(private readonly store: IdentityStore) {}

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

  /** Authenticates an `Authorization` header value (Basic user:password, or Bearer API key). */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    if (!authorization)
      throw unauthenticated('Authentication is required: send Basic credentials or a Bearer API key.');
    const space = authorization.indexOf(' ');
    const scheme = authorization.slice(0, space).toLowerCase();
    const value = authorization.slice(space + 1).trim();
    if (scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0) throw unauthenticated('Malformed Basic credentials.');
      const identity = await this.store.findIdentityByName(decoded.slice(0, colon));
      if (!identity || identity.kind !== 'user') throw unauthenticated('Invalid user name or password.');
      return this.verify(identity, decoded.slice(colon + 1), 'Invalid user name or password.');
    }
    if (scheme === 'bearer' && value.startsWith(API_KEY_PREFIX)) {
      const id = value.slice(API_KEY_PREFIX.length, API_KEY_PREFIX.length + 36);
      const identity = await this.store.getIdentity(id);
      if (!identity || identity.kind !== 'apiKey') throw unauthenticated('Invalid API key.');
      return this.verify(identity, value, 'Invalid API key.');
    }
    throw unauthenticated('Unsupported authorization scheme: use Basic or Bearer.');
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

  private networksOf(ranges: string[]): IpMatcher {
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
    if (!(await this.store.deleteIdentity(id)))
      throw new ManagementError('ResourceNotFound', `Identity '${id}' was not found.`);
    for (const [secret, entry] of this.verified) if (entry.id === id) this.verified.delete(secret);
  }

  /** Gives a principal (by id or name) a role on a registry. */
  async assignRole(principal: string, registry: string, role: RoleName): Promise<RoleAssignment> {
    const identity =
      (await this.store.getIdentity(principal)) ?? (await this.store.findIdentityByName(principal));
    if (!identity) throw new ManagementError('ResourceNotFound', `Principal '${principal}' was not found.`);
    const assignment = { principalId: identity.id, registry, role };
    await this.store.setRole(assignment);
    return assignment;
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

  private async verify(identity: IdentityRecord, secret: string, failure: string): Promise<Principal> {
    const fingerprint = createHash('sha256')
      .update(identity.secretHash)
      .update('\0')
      .update(secret)
      .digest('base64');
    const cached = this.verified.get(fingerprint);
    if (!(cached && cached.until > Date.now())) {
      if (!(await verifySecret(secret, identity.secretHash))) throw unauthenticated(failure);
      if (this.verified.size > 10_000) this.verified.clear();
      this.verified.set(fingerprint, { id: identity.id, until: Date.now() + VERIFIED_TTL_MS });
    }
    return {
      id: identity.id,
      name: identity.name,
      kind: identity.kind,
      trustedService: identity.trustedService,
      roles: await this.store.rolesOf(identity.id),
      ...(identity.allowedNetworks ? { allowedNetworks: this.networksOf(identity.allowedNetworks) } : {}),
    };
  }
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
