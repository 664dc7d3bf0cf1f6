import type { Kysely } from 'kysely';
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
import { deleteSignInsOf, SIGN_IN_DDL, SqlSignInLogStore } from './sign-in-log-store.js';
import { scopeMapRow, tokenRow, toScopeMap, toToken, type ScopeMapRow, type TokenRow } from './auth-rows.js';
import { lockKey, publishIf, runDdl, touched } from './statements.js';
import { writeTransaction } from './transaction.js';

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
`;

/** The auth store's schema steps. */
export const AUTH_MIGRATIONS: MigrationSet = {
  '0002-auth-tables': { up: (db, dialect) => runDdl(db, dialect, DDL + SIGN_IN_DDL) },
};
registerMigrations(AUTH_MIGRATIONS);

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
}

/** The advisory-lock space of "tokens of one registry" (ASCII "tokn"). */
const TOKEN_LOCK_SPACE = 0x746f6b6e;

/**
 * Signing keys, data-plane roles, scope maps, tokens and (through `SqlSignInLogStore`) the sign-in log,
 * with one set of queries for SQLite and PostgreSQL. Every write that changes what a cache holds is published on `feed` after it
 * succeeds.
 */
export class SqlAuthStore implements AuthStore {
  private readonly db: Kysely<AuthTables>;
  private readonly signIns: SqlSignInLogStore;

  constructor(
    private readonly database: SqlDatabase,
    private readonly feed?: ChangeFeed,
  ) {
    this.db = database.db as Kysely<AuthTables>;
    this.signIns = new SqlSignInLogStore(database);
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
    return publishIf(this.feed, touched(result) > 0, { kind: 'signingKey', kid: key.kid });
  }

  async addDataPlaneRole(a: DataPlaneRoleAssignment): Promise<void> {
    const result = await this.db
      .insertInto('data_plane_roles')
      .values({ principal_id: a.principalId, registry: a.registry, role: a.role })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    publishIf(this.feed, touched(result) > 0, { kind: 'roles', principalId: a.principalId });
  }

  async removeDataPlaneRole(a: DataPlaneRoleAssignment): Promise<boolean> {
    const result = await this.db
      .deleteFrom('data_plane_roles')
      .where('principal_id', '=', a.principalId)
      .where('registry', '=', a.registry)
      .where('role', '=', a.role)
      .executeTakeFirst();
    return publishIf(this.feed, touched(result) > 0, { kind: 'roles', principalId: a.principalId });
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
    return publishIf(this.feed, touched(result) > 0, {
      kind: 'scopeMap',
      registry: r.registry,
      name: r.name,
    });
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
    return publishIf(this.feed, touched(result) > 0, {
      kind: 'scopeMap',
      registry: r.registry,
      name: r.name,
    });
  }

  async deleteScopeMap(registry: string, name: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('scope_maps')
      .where('registry', '=', registry)
      .where('name', '=', name)
      .executeTakeFirst();
    return publishIf(this.feed, touched(result) > 0, { kind: 'scopeMap', registry, name });
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
    publishIf(this.feed, outcome === 'created', { kind: 'token', registry: r.registry, name: r.name });
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
    return publishIf(this.feed, touched(result) > 0, { kind: 'token', registry: r.registry, name: r.name });
  }

  async deleteToken(registry: string, name: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('tokens')
      .where('registry', '=', registry)
      .where('name', '=', name)
      .executeTakeFirst();
    return publishIf(this.feed, touched(result) > 0, { kind: 'token', registry, name });
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
      await deleteSignInsOf(trx, registry);
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

  appendSignIns(records: SignInRecord[]): Promise<void> {
    return this.signIns.appendSignIns(records);
  }

  querySignIns(filter: {
    registry?: string;
    since?: Date;
    result?: SignInResult;
    limit: number;
  }): Promise<SignInRecord[]> {
    return this.signIns.querySignIns(filter);
  }

  pruneSignIns(before: Date, maxRows: number): Promise<void> {
    return this.signIns.pruneSignIns(before, maxRows);
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
