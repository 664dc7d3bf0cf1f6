import { tokenAllowedIpRanges } from '../auth/identity-networks.js';
import { generateSecret, hashSecret } from '../auth/passwords.js';
import { InvalidScopeMapActionError, SYSTEM_SCOPE_MAPS, parseScopeMapActions } from '../auth/permissions.js';
import { ManagementError } from '../errors/management.js';
import type { AuthStore, ScopeMapRecord, TokenPasswordRecord, TokenRecord } from '../store/types.js';
import { canonicalIpRanges } from './ip-ranges.js';
import type { RegistryManager } from './registries.js';

const NAME_RE = /^[a-zA-Z0-9-]{5,50}$/;
const MAX_ACTIONS = 500;
type PasswordName = TokenPasswordRecord['name'];

/** ACR's scope map resource. */
export function toScopeMapResource(registry: string, map: ScopeMapRecord | SystemMap) {
  const system = 'system' in map;
  return {
    id: `/registries/${registry}/scopeMaps/${map.name}`,
    name: map.name,
    type: 'Berth/registries/scopeMaps',
    properties: {
      description: map.description,
      type: system ? 'SystemDefined' : 'UserDefined',
      actions: map.actions,
      ...(system ? {} : { creationDate: map.createdAt.toISOString() }),
      provisioningState: 'Succeeded',
    },
  };
}

/** ACR's token resource (never the password values). */
export function toTokenResource(token: TokenRecord) {
  const ranges = tokenAllowedIpRanges(token);
  return {
    id: `/registries/${token.registry}/tokens/${token.name}`,
    name: token.name,
    type: 'Berth/registries/tokens',
    properties: {
      scopeMapId: `/registries/${token.registry}/scopeMaps/${token.scopeMap}`,
      status: token.status,
      credentials: {
        passwords: token.passwords.map((p) => ({
          name: p.name,
          creationTime: p.createdAt.toISOString(),
          ...(p.expiry ? { expiry: p.expiry.toISOString() } : {}),
        })),
      },
      ...(ranges ? { allowedIpRanges: ranges } : {}),
      creationDate: token.createdAt.toISOString(),
      provisioningState: 'Succeeded',
    },
  };
}

interface SystemMap {
  system: true;
  name: string;
  description: string;
  actions: string[];
}

/** Repository-scoped tokens and scope maps of a registry, as ACR models them. */
export class RegistryTokens {
  constructor(
    private readonly store: AuthStore,
    /** Token changes reach every node's caches through the store's change events. */
    private readonly registries: RegistryManager,
  ) {}

  /** User-defined and system scope maps. */
  async listScopeMaps(registry: string): Promise<(ScopeMapRecord | SystemMap)[]> {
    const system = Object.entries(SYSTEM_SCOPE_MAPS).map(([name, map]): SystemMap => ({
      system: true,
      name,
      ...map,
    }));
    return [...system, ...(await this.store.listScopeMaps(registry))];
  }

  async getScopeMap(registry: string, name: string): Promise<ScopeMapRecord | SystemMap> {
    const system = SYSTEM_SCOPE_MAPS[name];
    if (system) return { system: true, name, ...system };
    const map = await this.store.getScopeMap(registry, name);
    if (!map) throw notFound('scope map', name, registry);
    return map;
  }

  /** Creates (or, when it exists and `update` allows, replaces) a user-defined scope map. */
  async putScopeMap(
    registry: string,
    name: string,
    body: { description?: string; actions?: string[] },
    mode: 'create' | 'update' | 'upsert',
  ): Promise<{ map: ScopeMapRecord; created: boolean }> {
    if (SYSTEM_SCOPE_MAPS[name])
      throw new ManagementError('Conflict', `'${name}' is a system scope map and cannot be changed.`);
    validateName(name, 'scope map');
    // A bounded retry: a concurrent update makes the version check fail, and we re-read and re-apply.
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await this.store.getScopeMap(registry, name);
      if (existing && mode === 'create')
        throw new ManagementError('Conflict', `The scope map '${name}' already exists.`, { target: 'name' });
      if (!existing && mode === 'update') throw notFound('scope map', name, registry);
      const actions = body.actions ?? existing?.actions;
      if (!actions || actions.length === 0)
        throw new ManagementError('InvalidRequestContent', 'A scope map needs at least one action.', {
          target: 'properties.actions',
        });
      validateActions(actions);
      const now = new Date();
      const map: ScopeMapRecord = {
        registry,
        name,
        description: body.description ?? existing?.description ?? '',
        actions: [...new Set(actions)],
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
        version: (existing?.version ?? 0) + 1,
      };
      const ok = existing
        ? await this.store.updateScopeMap(map, existing.version)
        : await this.store.createScopeMap(map);
      if (ok) {
        return { map, created: !existing };
      }
    }
    throw new ManagementError(
      'Conflict',
      `The scope map '${name}' is being changed by someone else; try again.`,
    );
  }

  async deleteScopeMap(registry: string, name: string): Promise<void> {
    if (SYSTEM_SCOPE_MAPS[name])
      throw new ManagementError('Conflict', `'${name}' is a system scope map and cannot be deleted.`);
    const users = (await this.store.listTokens(registry)).filter((t) => t.scopeMap === name);
    if (users.length > 0)
      throw new ManagementError(
        'Conflict',
        `The scope map '${name}' is used by token(s) ${users.map((t) => `'${t.name}'`).join(', ')}; delete or update them first.`,
      );
    if (!(await this.store.deleteScopeMap(registry, name))) throw notFound('scope map', name, registry);
  }

  listTokens(registry: string): Promise<TokenRecord[]> {
    return this.store.listTokens(registry);
  }

  async getToken(registry: string, name: string): Promise<TokenRecord> {
    const token = await this.store.getToken(registry, name);
    if (!token) throw notFound('token', name, registry);
    return token;
  }

  /**
   * Creates or updates a token (scope map, status, address ranges: an empty list removes them); the
   * SKU's token limit applies to creation.
   */
  async putToken(
    registry: string,
    name: string,
    body: { scopeMap?: string; status?: 'enabled' | 'disabled'; allowedIpRanges?: string[] },
    mode: 'create' | 'update' | 'upsert',
  ): Promise<{ token: TokenRecord; created: boolean }> {
    const result = await this.writeToken(registry, name, body, mode);
    return result;
  }

  private async writeToken(
    registry: string,
    name: string,
    body: { scopeMap?: string; status?: 'enabled' | 'disabled'; allowedIpRanges?: string[] },
    mode: 'create' | 'update' | 'upsert',
  ): Promise<{ token: TokenRecord; created: boolean }> {
    validateName(name, 'token');
    if (body.scopeMap !== undefined) await this.getScopeMap(registry, body.scopeMap);
    const ranges =
      body.allowedIpRanges && canonicalIpRanges(body.allowedIpRanges, 'properties.allowedIpRanges');
    const withRanges = (properties: Record<string, unknown>): Record<string, unknown> => {
      if (ranges === undefined) return properties;
      const { allowedIpRanges: _, ...rest } = properties;
      return ranges.length > 0 ? { ...rest, allowedIpRanges: ranges } : rest;
    };
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await this.store.getToken(registry, name);
      if (existing && mode === 'create')
        throw new ManagementError('Conflict', `The token '${name}' already exists.`, { target: 'name' });
      if (!existing && mode === 'update') throw notFound('token', name, registry);
      const now = new Date();
      if (existing) {
        const token: TokenRecord = {
          ...existing,
          scopeMap: body.scopeMap ?? existing.scopeMap,
          status: body.status ?? existing.status,
          properties: withRanges(existing.properties),
          updatedAt: now,
          version: existing.version + 1,
        };
        if (await this.store.updateToken(token, existing.version)) return { token, created: false };
        continue;
      }
      if (body.scopeMap === undefined)
        throw new ManagementError('InvalidRequestContent', 'A token needs a scope map.', {
          target: 'properties.scopeMapId',
        });
      const token: TokenRecord = {
        registry,
        name,
        scopeMap: body.scopeMap,
        status: body.status ?? 'enabled',
        passwords: [],
        createdAt: now,
        updatedAt: now,
        version: 1,
        properties: withRanges({}),
      };
      const { settings } = await this.registries.settings(registry);
      const limit = this.registries.planFor(settings).maxTokens;
      const outcome = await this.store.createToken(token, limit);
      if (outcome === 'created') return { token, created: true };
      if (outcome === 'limit')
        throw new ManagementError(
          'TokenLimitExceeded',
          `A registry in the ${settings.sku} SKU can have at most ${limit} tokens.`,
          { target: 'name' },
        );
    }
    throw new ManagementError('Conflict', `The token '${name}' is being changed by someone else; try again.`);
  }

  async deleteToken(registry: string, name: string): Promise<void> {
    const deleted = await this.store.deleteToken(registry, name);
    if (!deleted) throw notFound('token', name, registry);
  }

  /**
   * Generates new passwords for a token (ACR `generateCredentials`): one named password, or both.
   * The values are returned now and never again; only their slow hashes are kept.
   */
  async generateCredentials(
    registry: string,
    tokenName: string,
    which: PasswordName | undefined,
    expiry: Date | undefined,
  ): Promise<{ username: string; passwords: { name: PasswordName; value: string; expiry?: string }[] }> {
    if (expiry && expiry.getTime() <= Date.now())
      throw new ManagementError('InvalidParameter', 'The expiry must be in the future.', {
        target: 'expiry',
      });
    const names: PasswordName[] = which ? [which] : ['password1', 'password2'];
    const generated = await Promise.all(
      names.map(async (name) => {
        const value = generateSecret(32);
        return {
          name,
          value,
          record: { name, hash: await hashSecret(value), createdAt: new Date(), expiry },
        };
      }),
    );
    for (let attempt = 0; attempt < 5; attempt++) {
      const token = await this.getToken(registry, tokenName);
      const kept = token.passwords.filter((p) => !names.includes(p.name));
      const passwords = [...kept, ...generated.map((g) => g.record)].sort((a, b) =>
        a.name.localeCompare(b.name),
      );
      const updated = { ...token, passwords, updatedAt: new Date(), version: token.version + 1 };
      if (await this.store.updateToken(updated, token.version)) {
        return {
          username: token.name,
          passwords: generated.map((g) => ({
            name: g.name,
            value: g.value,
            ...(expiry ? { expiry: expiry.toISOString() } : {}),
          })),
        };
      }
    }
    throw new ManagementError(
      'Conflict',
      `The token '${tokenName}' is being changed by someone else; try again.`,
    );
  }

  /** Removes one of a token's passwords. */
  async deletePassword(registry: string, tokenName: string, which: PasswordName): Promise<TokenRecord> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const token = await this.getToken(registry, tokenName);
      const passwords = token.passwords.filter((p) => p.name !== which);
      const updated = { ...token, passwords, updatedAt: new Date(), version: token.version + 1 };
      if (await this.store.updateToken(updated, token.version)) {
        return updated;
      }
    }
    throw new ManagementError(
      'Conflict',
      `The token '${tokenName}' is being changed by someone else; try again.`,
    );
  }
}

function validateName(name: string, what: string): void {
  if (!NAME_RE.test(name))
    throw new ManagementError(
      'InvalidParameter',
      `The ${what} name '${name.slice(0, 60)}' is invalid: use 5-50 letters, digits and hyphens.`,
      { target: 'name' },
    );
}

function validateActions(actions: string[]): void {
  if (actions.length > MAX_ACTIONS)
    throw new ManagementError(
      'InvalidScopeMapAction',
      `A scope map can hold at most ${MAX_ACTIONS} actions.`,
    );
  try {
    parseScopeMapActions(actions);
  } catch (error) {
    if (error instanceof InvalidScopeMapActionError)
      throw new ManagementError('InvalidScopeMapAction', error.message, { target: 'properties.actions' });
    throw error;
  }
}

function notFound(what: string, name: string, registry: string): ManagementError {
  return new ManagementError(
    'ResourceNotFound',
    `The ${what} '${name.slice(0, 60)}' was not found in registry '${registry}'.`,
  );
}
