import type Database from 'better-sqlite3';
import { openSqlite } from './sqlite.js';
import type {
  AuthStore,
  DataPlaneRoleAssignment,
  DataPlaneRoleName,
  ScopeMapRecord,
  SignInRecord,
  SignInResult,
  SigningKeyRecord,
  TokenRecord,
} from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS signing_keys (
  kid TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  sealed_private_jwk TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS data_plane_roles (
  principal_id TEXT NOT NULL,
  registry TEXT NOT NULL,
  role TEXT NOT NULL,
  PRIMARY KEY (principal_id, registry, role)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS data_plane_roles_by_registry ON data_plane_roles (registry);
CREATE TABLE IF NOT EXISTS scope_maps (
  registry TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  actions TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY (registry, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
  registry TEXT NOT NULL,
  name TEXT NOT NULL,
  scope_map TEXT NOT NULL,
  status TEXT NOT NULL,
  passwords TEXT NOT NULL,
  properties TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY (registry, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sign_ins (
  minute INTEGER NOT NULL,
  registry TEXT NOT NULL,
  identity TEXT NOT NULL,
  client_ip TEXT NOT NULL,
  listener TEXT NOT NULL,
  result TEXT NOT NULL,
  count INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  PRIMARY KEY (minute, registry, identity, client_ip, listener, result)
);
CREATE INDEX IF NOT EXISTS sign_ins_by_registry ON sign_ins (registry, minute);
`;

interface ScopeMapRow {
  registry: string;
  name: string;
  description: string;
  actions: string;
  created_at: number;
  updated_at: number;
  version: number;
}

interface TokenRow {
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

interface SignInRow {
  minute: number;
  registry: string;
  identity: string;
  client_ip: string;
  listener: 'data' | 'management';
  result: SignInResult;
  count: number;
  last_seen: number;
}

/** The sign-in side of the embedded database (its own WAL connection to the same file). */
export class SqliteAuthStore implements AuthStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = openSqlite(path, SCHEMA);
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    const rows = this.db.prepare('SELECT * FROM signing_keys ORDER BY created_at').all() as {
      kid: string;
      alg: string;
      public_jwk: string;
      sealed_private_jwk: string;
      created_at: number;
    }[];
    return rows.map((r) => ({
      kid: r.kid,
      alg: r.alg,
      publicJwk: r.public_jwk,
      sealedPrivateJwk: r.sealed_private_jwk,
      createdAt: new Date(r.created_at),
    }));
  }

  async addSigningKey(key: SigningKeyRecord): Promise<boolean> {
    return (
      this.db
        .prepare(
          'INSERT INTO signing_keys (kid, alg, public_jwk, sealed_private_jwk, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
        )
        .run(key.kid, key.alg, key.publicJwk, key.sealedPrivateJwk, key.createdAt.getTime()).changes > 0
    );
  }

  async addDataPlaneRole(a: DataPlaneRoleAssignment): Promise<void> {
    this.db
      .prepare(
        'INSERT INTO data_plane_roles (principal_id, registry, role) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      )
      .run(a.principalId, a.registry, a.role);
  }

  async removeDataPlaneRole(a: DataPlaneRoleAssignment): Promise<boolean> {
    return (
      this.db
        .prepare('DELETE FROM data_plane_roles WHERE principal_id = ? AND registry = ? AND role = ?')
        .run(a.principalId, a.registry, a.role).changes > 0
    );
  }

  async dataPlaneRolesOf(principalId: string): Promise<DataPlaneRoleAssignment[]> {
    return this.roleRows(
      this.db
        .prepare('SELECT * FROM data_plane_roles WHERE principal_id = ? ORDER BY registry, role')
        .all(principalId),
    );
  }

  async dataPlaneRolesOn(registry: string): Promise<DataPlaneRoleAssignment[]> {
    return this.roleRows(
      this.db
        .prepare('SELECT * FROM data_plane_roles WHERE registry = ? ORDER BY principal_id, role')
        .all(registry),
    );
  }

  async getScopeMap(registry: string, name: string): Promise<ScopeMapRecord | undefined> {
    const row = this.db
      .prepare('SELECT * FROM scope_maps WHERE registry = ? AND name = ?')
      .get(registry, name) as ScopeMapRow | undefined;
    return row && toScopeMap(row);
  }

  async listScopeMaps(registry: string): Promise<ScopeMapRecord[]> {
    const rows = this.db
      .prepare('SELECT * FROM scope_maps WHERE registry = ? ORDER BY name')
      .all(registry) as ScopeMapRow[];
    return rows.map(toScopeMap);
  }

  async createScopeMap(r: ScopeMapRecord): Promise<boolean> {
    return (
      this.db
        .prepare(
          `INSERT INTO scope_maps (registry, name, description, actions, created_at, updated_at, version)
           VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        )
        .run(
          r.registry,
          r.name,
          r.description,
          JSON.stringify(r.actions),
          r.createdAt.getTime(),
          r.updatedAt.getTime(),
          r.version,
        ).changes > 0
    );
  }

  async updateScopeMap(r: ScopeMapRecord, expectedVersion: number): Promise<boolean> {
    return (
      this.db
        .prepare(
          `UPDATE scope_maps SET description = ?, actions = ?, updated_at = ?, version = ?
           WHERE registry = ? AND name = ? AND version = ?`,
        )
        .run(
          r.description,
          JSON.stringify(r.actions),
          r.updatedAt.getTime(),
          r.version,
          r.registry,
          r.name,
          expectedVersion,
        ).changes > 0
    );
  }

  async deleteScopeMap(registry: string, name: string): Promise<boolean> {
    return (
      this.db.prepare('DELETE FROM scope_maps WHERE registry = ? AND name = ?').run(registry, name).changes >
      0
    );
  }

  async getToken(registry: string, name: string): Promise<TokenRecord | undefined> {
    const row = this.db
      .prepare('SELECT * FROM tokens WHERE registry = ? AND name = ?')
      .get(registry, name) as TokenRow | undefined;
    return row && toToken(row);
  }

  async listTokens(registry: string): Promise<TokenRecord[]> {
    const rows = this.db
      .prepare('SELECT * FROM tokens WHERE registry = ? ORDER BY name')
      .all(registry) as TokenRow[];
    return rows.map(toToken);
  }

  async countTokens(registry: string): Promise<number> {
    return (
      this.db.prepare('SELECT COUNT(*) AS n FROM tokens WHERE registry = ?').get(registry) as { n: number }
    ).n;
  }

  async createToken(r: TokenRecord, limit: number): Promise<'created' | 'exists' | 'limit'> {
    // Counting and inserting in one immediate transaction, so two creates cannot both pass the limit.
    return this.db
      .transaction((): 'created' | 'exists' | 'limit' => {
        if (this.db.prepare('SELECT 1 FROM tokens WHERE registry = ? AND name = ?').get(r.registry, r.name))
          return 'exists';
        const { n } = this.db
          .prepare('SELECT COUNT(*) AS n FROM tokens WHERE registry = ?')
          .get(r.registry) as {
          n: number;
        };
        if (n >= limit) return 'limit';
        this.db
          .prepare(
            `INSERT INTO tokens (registry, name, scope_map, status, passwords, properties, created_at, updated_at, version)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(...tokenValues(r));
        return 'created';
      })
      .immediate();
  }

  async updateToken(r: TokenRecord, expectedVersion: number): Promise<boolean> {
    const [registry, name, ...rest] = tokenValues(r);
    const [scopeMap, status, passwords, properties, , updatedAt, version] = rest;
    return (
      this.db
        .prepare(
          `UPDATE tokens SET scope_map = ?, status = ?, passwords = ?, properties = ?, updated_at = ?, version = ?
           WHERE registry = ? AND name = ? AND version = ?`,
        )
        .run(scopeMap, status, passwords, properties, updatedAt, version, registry, name, expectedVersion)
        .changes > 0
    );
  }

  async deleteToken(registry: string, name: string): Promise<boolean> {
    return (
      this.db.prepare('DELETE FROM tokens WHERE registry = ? AND name = ?').run(registry, name).changes > 0
    );
  }

  async deleteAuthForRegistry(registry: string): Promise<void> {
    this.db.transaction(() => {
      for (const table of ['tokens', 'scope_maps', 'data_plane_roles', 'sign_ins'])
        this.db.prepare(`DELETE FROM ${table} WHERE registry = ?`).run(registry);
    })();
  }

  async appendSignIns(records: SignInRecord[]): Promise<void> {
    const upsert = this.db.prepare(
      `INSERT INTO sign_ins (minute, registry, identity, client_ip, listener, result, count, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (minute, registry, identity, client_ip, listener, result)
       DO UPDATE SET count = count + excluded.count, last_seen = MAX(last_seen, excluded.last_seen)`,
    );
    this.db.transaction(() => {
      for (const r of records)
        upsert.run(
          r.minute.getTime(),
          r.registry,
          r.identity,
          r.clientIp,
          r.listener,
          r.result,
          r.count,
          r.lastSeen.getTime(),
        );
    })();
  }

  async querySignIns(filter: {
    registry?: string;
    since?: Date;
    result?: SignInResult;
    limit: number;
  }): Promise<SignInRecord[]> {
    const registry = filter.registry ?? null;
    const result = filter.result ?? null;
    const rows = this.db
      .prepare(
        `SELECT * FROM sign_ins WHERE (? IS NULL OR registry = ?) AND minute >= ? AND (? IS NULL OR result = ?)
         ORDER BY last_seen DESC LIMIT ?`,
      )
      .all(registry, registry, filter.since?.getTime() ?? 0, result, result, filter.limit) as SignInRow[];
    return rows.map((r) => ({
      minute: new Date(r.minute),
      registry: r.registry,
      identity: r.identity,
      clientIp: r.client_ip,
      listener: r.listener,
      result: r.result,
      count: r.count,
      lastSeen: new Date(r.last_seen),
    }));
  }

  async pruneSignIns(before: Date, maxRows: number): Promise<void> {
    this.db.prepare('DELETE FROM sign_ins WHERE minute < ?').run(before.getTime());
    this.db
      .prepare(
        `DELETE FROM sign_ins WHERE rowid IN (SELECT rowid FROM sign_ins ORDER BY minute DESC LIMIT -1 OFFSET ?)`,
      )
      .run(maxRows);
  }

  async close(): Promise<void> {
    this.db.close();
  }

  private roleRows(rows: unknown[]): DataPlaneRoleAssignment[] {
    return (rows as { principal_id: string; registry: string; role: DataPlaneRoleName }[]).map((r) => ({
      principalId: r.principal_id,
      registry: r.registry,
      role: r.role,
    }));
  }
}

function toScopeMap(row: ScopeMapRow): ScopeMapRecord {
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

function toToken(row: TokenRow): TokenRecord {
  const passwords = JSON.parse(row.passwords) as {
    name: 'password1' | 'password2';
    hash: string;
    createdAt: number;
    expiry?: number;
  }[];
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

function tokenValues(r: TokenRecord) {
  const passwords = r.passwords.map((p) => ({
    name: p.name,
    hash: p.hash,
    createdAt: p.createdAt.getTime(),
    ...(p.expiry ? { expiry: p.expiry.getTime() } : {}),
  }));
  return [
    r.registry,
    r.name,
    r.scopeMap,
    r.status,
    JSON.stringify(passwords),
    JSON.stringify(r.properties),
    r.createdAt.getTime(),
    r.updatedAt.getTime(),
    r.version,
  ] as const;
}
