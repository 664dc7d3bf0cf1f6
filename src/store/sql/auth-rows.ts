import type { ScopeMapRecord, TokenRecord } from '../types.js';

/** A scope map's row: actions are JSON, times epoch milliseconds (the embedded encoding). */
export interface ScopeMapRow {
  registry: string;
  name: string;
  description: string;
  actions: string;
  created_at: number;
  updated_at: number;
  version: number;
}

/** A token's row. */
export interface TokenRow {
  registry: string;
  name: string;
  scope_map: string;
  status: 'enabled' | 'disabled';
  passwords: string;
  properties: string;
  created_at: number;
  updated_at: number;
  version: number;
}

/** A scope map as its row. */
export function scopeMapRow(r: ScopeMapRecord): ScopeMapRow {
  return {
    registry: r.registry,
    name: r.name,
    description: r.description,
    actions: JSON.stringify(r.actions),
    created_at: r.createdAt.getTime(),
    updated_at: r.updatedAt.getTime(),
    version: r.version,
  };
}

/** A scope-map row as the record. */
export function toScopeMap(row: ScopeMapRow): ScopeMapRecord {
  return {
    registry: row.registry,
    name: row.name,
    description: row.description,
    actions: JSON.parse(row.actions) as string[],
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    version: row.version,
  };
}

/** Token passwords are stored as JSON with epoch-millisecond times (the embedded encoding). */
interface StoredPassword {
  name: 'password1' | 'password2';
  hash: string;
  createdAt: number;
  expiry?: number;
}

/** A token as its row (passwords JSON with epoch-millisecond times). */
export function tokenRow(r: TokenRecord): TokenRow {
  const passwords: StoredPassword[] = r.passwords.map((p) => ({
    name: p.name,
    hash: p.hash,
    createdAt: p.createdAt.getTime(),
    ...(p.expiry ? { expiry: p.expiry.getTime() } : {}),
  }));
  return {
    registry: r.registry,
    name: r.name,
    scope_map: r.scopeMap,
    status: r.status,
    passwords: JSON.stringify(passwords),
    properties: JSON.stringify(r.properties),
    created_at: r.createdAt.getTime(),
    updated_at: r.updatedAt.getTime(),
    version: r.version,
  };
}

/** A token row as the record. */
export function toToken(row: TokenRow): TokenRecord {
  const passwords = JSON.parse(row.passwords) as StoredPassword[];
  return {
    registry: row.registry,
    name: row.name,
    scopeMap: row.scope_map,
    status: row.status,
    passwords: passwords.map((p) => ({
      name: p.name,
      hash: p.hash,
      createdAt: new Date(p.createdAt),
      ...(p.expiry !== undefined ? { expiry: new Date(p.expiry) } : {}),
    })),
    properties: JSON.parse(row.properties) as Record<string, unknown>,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    version: row.version,
  };
}
