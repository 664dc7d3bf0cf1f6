import type { Generated, Kysely } from 'kysely';
import type { ChangeEvent, ChangeFeed } from '../change-feed.js';
import type {
  AuthStore,
  DataPlaneRoleAssignment,
  DataPlaneRoleName,
  ScopeMapRecord,
  SignInRecord,
  SignInResult,
  SigningKeyRecord,
  TokenRecord,
} from '../types.js';
import type { SqlDatabase } from './database.js';
import { registerMigrations, type MigrationSet } from './migrations.js';
import { ALL_ROWS, chunks, greatest, lockKey, runDdl, touched, writeTransaction } from './statements.js';

/** The schema the embedded SQLite store has always had (kept byte for byte in meaning). */
const DDL = `
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
  ROWID_COLUMN
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

/** The auth store's schema steps. */
export const AUTH_MIGRATIONS: MigrationSet = {
  '0002-auth-tables': { up: (db, dialect) => runDdl(db, dialect, DDL) },
};
registerMigrations(AUTH_MIGRATIONS);

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
  rowid: Generated<number>;
  minute: number;
  registry: string;
  identity: string;
  client_ip: string;
  listener: 'data' | 'management';
  result: SignInResult;
  count: number;
  last_seen: number;
}

interface AuthTables {
  signing_keys: {
    kid: string;
    alg: string;
    public_jwk: string;
    sealed_private_jwk: string;
    created_at: number;
  };
  data_plane_roles: { principal_id: string; registry: string; role: DataPlaneRoleName };
  scope_maps: ScopeMapRow;
  tokens: TokenRow;
  sign_ins: SignInRow;
}

/** The advisory-lock space of "tokens of one registry" (ASCII "tokn"). */
const TOKEN_LOCK_SPACE = 0x746f6b6e;
/** Sign-in rows per upsert statement (8 parameters each). */
const SIGN_IN_ROWS_PER_STATEMENT = 500;
const SIGN_IN_KEY = ['minute', 'registry', 'identity', 'client_ip', 'listener', 'result'] as const;

/**
 * Signing keys, data-plane roles, scope maps, tokens and the sign-in log, with one set of queries for
 * SQLite and PostgreSQL. Every write that changes what a cache holds is published on `feed` after it
 * succeeds.
 */
export class SqlAuthStore implements AuthStore {
  private readonly db: Kysely<AuthTables>;

  constructor(
    private readonly database: SqlDatabase,
    private readonly feed?: ChangeFeed,
  ) {
    this.db = database.db as Kysely<AuthTables>;
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    const rows = await this.db.selectFrom('signing_keys').selectAll().orderBy('created_at').execute();
    return rows.map((r) => ({
      kid: r.kid,
      alg: r.alg,
      publicJwk: r.public_jwk,
      sealedPrivateJwk: r.sealed_private_jwk,
      createdAt: new Date(r.created_at),
    }));
  }

  async addSigningKey(key: SigningKeyRecord): Promise<boolean> {
    const result = await this.db
      .insertInto('signing_keys')
      .values({
        kid: key.kid,
        alg: key.alg,
        public_jwk: key.publicJwk,
        sealed_private_jwk: key.sealedPrivateJwk,
        created_at: key.createdAt.getTime(),
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return this.published(touched(result) > 0, { kind: 'signingKey', kid: key.kid });
  }

  async addDataPlaneRole(a: DataPlaneRoleAssignment): Promise<void> {
    const result = await this.db
      .insertInto('data_plane_roles')
      .values({ principal_id: a.principalId, registry: a.registry, role: a.role })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    this.published(touched(result) > 0, { kind: 'roles', principalId: a.principalId });
  }

  async removeDataPlaneRole(a: DataPlaneRoleAssignment): Promise<boolean> {
    const result = await this.db
      .deleteFrom('data_plane_roles')
      .where('principal_id', '=', a.principalId)
      .where('registry', '=', a.registry)
      .where('role', '=', a.role)
      .executeTakeFirst();
    return this.published(touched(result) > 0, { kind: 'roles', principalId: a.principalId });
  }

  async dataPlaneRolesOf(principalId: string): Promise<DataPlaneRoleAssignment[]> {
    const rows = await this.db
      .selectFrom('data_plane_roles')
      .selectAll()
      .where('principal_id', '=', principalId)
      .orderBy('registry')
      .orderBy('role')
      .execute();
    return rows.map(toRole);
  }

  async dataPlaneRolesOn(registry: string): Promise<DataPlaneRoleAssignment[]> {
    const rows = await this.db
      .selectFrom('data_plane_roles')
      .selectAll()
      .where('registry', '=', registry)
      .orderBy('principal_id')
      .orderBy('role')
      .execute();
    return rows.map(toRole);
  }

  async getScopeMap(registry: string, name: string): Promise<ScopeMapRecord | undefined> {
    const row = await this.db
      .selectFrom('scope_maps')
      .selectAll()
      .where('registry', '=', registry)
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toScopeMap(row);
  }

  async listScopeMaps(registry: string): Promise<ScopeMapRecord[]> {
    const rows = await this.db
      .selectFrom('scope_maps')
      .selectAll()
      .where('registry', '=', registry)
      .orderBy('name')
      .execute();
    return rows.map(toScopeMap);
  }

  async createScopeMap(r: ScopeMapRecord): Promise<boolean> {
    const result = await this.db
      .insertInto('scope_maps')
      .values(scopeMapRow(r))
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return this.published(touched(result) > 0, { kind: 'scopeMap', registry: r.registry, name: r.name });
  }

  async updateScopeMap(r: ScopeMapRecord, expectedVersion: number): Promise<boolean> {
    const { description, actions, updated_at, version } = scopeMapRow(r);
    const result = await this.db
      .updateTable('scope_maps')
      .set({ description, actions, updated_at, version })
      .where('registry', '=', r.registry)
      .where('name', '=', r.name)
      .where('version', '=', expectedVersion)
      .executeTakeFirst();
    return this.published(touched(result) > 0, { kind: 'scopeMap', registry: r.registry, name: r.name });
  }

  async deleteScopeMap(registry: string, name: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('scope_maps')
      .where('registry', '=', registry)
      .where('name', '=', name)
      .executeTakeFirst();
    return this.published(touched(result) > 0, { kind: 'scopeMap', registry, name });
  }

  async getToken(registry: string, name: string): Promise<TokenRecord | undefined> {
    const row = await this.db
      .selectFrom('tokens')
      .selectAll()
      .where('registry', '=', registry)
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toToken(row);
  }

  async listTokens(registry: string): Promise<TokenRecord[]> {
    const rows = await this.db
      .selectFrom('tokens')
      .selectAll()
      .where('registry', '=', registry)
      .orderBy('name')
      .execute();
    return rows.map(toToken);
  }

  async countTokens(registry: string): Promise<number> {
    return countTokens(this.db, registry);
  }

  async createToken(r: TokenRecord, limit: number): Promise<'created' | 'exists' | 'limit'> {
    // The count and the insert are one step: SQLite's IMMEDIATE transaction shuts out other writers, and
    // on PostgreSQL every node creating a token in this registry waits for the registry's advisory lock,
    // so two nodes racing for the last slot cannot both see room.
    const outcome = await writeTransaction<AuthTables, 'created' | 'exists' | 'limit'>(
      this.database,
      async (trx) => {
        await lockKey(trx, this.database.dialect, TOKEN_LOCK_SPACE, r.registry);
        const existing = await trx
          .selectFrom('tokens')
          .select('name')
          .where('registry', '=', r.registry)
          .where('name', '=', r.name)
          .executeTakeFirst();
        if (existing) return 'exists';
        if ((await countTokens(trx, r.registry)) >= limit) return 'limit';
        await trx.insertInto('tokens').values(tokenRow(r)).execute();
        return 'created';
      },
    );
    this.published(outcome === 'created', { kind: 'token', registry: r.registry, name: r.name });
    return outcome;
  }

  async updateToken(r: TokenRecord, expectedVersion: number): Promise<boolean> {
    const { scope_map, status, passwords, properties, updated_at, version } = tokenRow(r);
    const result = await this.db
      .updateTable('tokens')
      .set({ scope_map, status, passwords, properties, updated_at, version })
      .where('registry', '=', r.registry)
      .where('name', '=', r.name)
      .where('version', '=', expectedVersion)
      .executeTakeFirst();
    return this.published(touched(result) > 0, { kind: 'token', registry: r.registry, name: r.name });
  }

  async deleteToken(registry: string, name: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('tokens')
      .where('registry', '=', registry)
      .where('name', '=', name)
      .executeTakeFirst();
    return this.published(touched(result) > 0, { kind: 'token', registry, name });
  }

  async deleteAuthForRegistry(registry: string): Promise<void> {
    const events = await writeTransaction<AuthTables, ChangeEvent[]>(this.database, async (trx) => {
      const tokens = await trx
        .deleteFrom('tokens')
        .where('registry', '=', registry)
        .returning('name')
        .execute();
      const maps = await trx
        .deleteFrom('scope_maps')
        .where('registry', '=', registry)
        .returning('name')
        .execute();
      const roles = await trx
        .deleteFrom('data_plane_roles')
        .where('registry', '=', registry)
        .returning('principal_id')
        .execute();
      await trx.deleteFrom('sign_ins').where('registry', '=', registry).execute();
      return [
        ...tokens.map((t): ChangeEvent => ({ kind: 'token', registry, name: t.name })),
        ...maps.map((m): ChangeEvent => ({ kind: 'scopeMap', registry, name: m.name })),
        ...[...new Set(roles.map((r) => r.principal_id))].map((principalId): ChangeEvent => ({
          kind: 'roles',
          principalId,
        })),
      ];
    });
    for (const event of events) this.feed?.publish(event);
  }

  async appendSignIns(records: SignInRecord[]): Promise<void> {
    // One row per key: a single upsert statement may not touch a row twice on PostgreSQL. Sorted, so
    // two nodes upserting overlapping batches lock the rows in the same order and cannot deadlock.
    const merged = new Map<string, Omit<SignInRow, 'rowid'>>();
    for (const r of records) {
      const row = {
        minute: r.minute.getTime(),
        registry: r.registry,
        identity: r.identity,
        client_ip: r.clientIp,
        listener: r.listener,
        result: r.result,
        count: r.count,
        last_seen: r.lastSeen.getTime(),
      };
      const key = JSON.stringify(SIGN_IN_KEY.map((column) => row[column]));
      const seen = merged.get(key);
      if (seen) {
        seen.count += row.count;
        seen.last_seen = Math.max(seen.last_seen, row.last_seen);
      } else merged.set(key, row);
    }
    const rows = [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
    if (rows.length === 0) return;
    const dialect = this.database.dialect;
    const upsert = (db: Kysely<AuthTables>, slice: typeof rows) =>
      db
        .insertInto('sign_ins')
        .values(slice)
        .onConflict((oc) =>
          oc.columns(SIGN_IN_KEY).doUpdateSet((eb) => ({
            // Counts add up in the database, so flushes from several nodes at once lose nothing.
            count: eb('sign_ins.count', '+', eb.ref('excluded.count')),
            last_seen: greatest(dialect, 'sign_ins.last_seen', 'excluded.last_seen'),
          })),
        )
        .execute();
    const slices = chunks(rows, SIGN_IN_ROWS_PER_STATEMENT);
    if (slices.length === 1) await upsert(this.db, slices[0]!);
    else
      await writeTransaction<AuthTables, void>(this.database, async (trx) => {
        for (const slice of slices) await upsert(trx, slice);
      });
  }

  async querySignIns(filter: {
    registry?: string;
    since?: Date;
    result?: SignInResult;
    limit: number;
  }): Promise<SignInRecord[]> {
    let query = this.db
      .selectFrom('sign_ins')
      .select(['minute', 'registry', 'identity', 'client_ip', 'listener', 'result', 'count', 'last_seen'])
      .where('minute', '>=', filter.since?.getTime() ?? 0);
    if (filter.registry !== undefined) query = query.where('registry', '=', filter.registry);
    if (filter.result !== undefined) query = query.where('result', '=', filter.result);
    const rows = await query.orderBy('last_seen', 'desc').limit(filter.limit).execute();
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
    await this.db.deleteFrom('sign_ins').where('minute', '<', before.getTime()).execute();
    await this.db
      .deleteFrom('sign_ins')
      .where(
        'rowid',
        'in',
        this.db
          .selectFrom('sign_ins')
          .select('rowid')
          .orderBy('minute', 'desc')
          .limit(ALL_ROWS)
          .offset(maxRows),
      )
      .execute();
  }

  /** Publishes `event` when `changed`; returns `changed`. */
  private published(changed: boolean, event: ChangeEvent): boolean {
    if (changed) this.feed?.publish(event);
    return changed;
  }
}

async function countTokens(db: Kysely<AuthTables>, registry: string): Promise<number> {
  const row = await db
    .selectFrom('tokens')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('registry', '=', registry)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

function toRole(r: {
  principal_id: string;
  registry: string;
  role: DataPlaneRoleName;
}): DataPlaneRoleAssignment {
  return { principalId: r.principal_id, registry: r.registry, role: r.role };
}

function scopeMapRow(r: ScopeMapRecord): ScopeMapRow {
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

/** Token passwords are stored as JSON with epoch-millisecond times (the embedded encoding). */
interface StoredPassword {
  name: 'password1' | 'password2';
  hash: string;
  createdAt: number;
  expiry?: number;
}

function tokenRow(r: TokenRecord): TokenRow {
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

function toToken(row: TokenRow): TokenRecord {
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
