import { sql, type Kysely } from 'kysely';
import type { ChangeEvent, ChangeFeed } from '../change-feed.js';
import type {
  DenialAuditStore,
  DenialBucket,
  DenialQueryResult,
  IdentityRecord,
  IdentityStore,
  IpSetRecord,
  IpSetStore,
  RoleAssignment,
  RoleName,
} from '../types.js';
import type { SqlDatabase } from './database.js';
import { DENIAL_DDL, MIGRATE_PER_REQUEST_LOG, SqlDenialLogStore } from './denial-log-store.js';
import { registerMigrations, type MigrationSet } from './migrations.js';
import { publishIf, runDdl, touched } from './statements.js';
import { writeTransaction } from './transaction.js';

/** The schema the embedded SQLite store has always had (`allowed_networks` came later, by ALTER). */
const DDL = `
CREATE TABLE IF NOT EXISTS identities (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  trusted_service INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS role_assignments (
  principal_id TEXT NOT NULL,
  registry TEXT NOT NULL,
  role TEXT NOT NULL,
  PRIMARY KEY (principal_id, registry)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ip_sets (
  name TEXT PRIMARY KEY,
  ranges TEXT NOT NULL,
  description TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  version INTEGER NOT NULL
);
`;

/** The management store's schema steps. */
export const MANAGEMENT_MIGRATIONS: MigrationSet = {
  '0003-management-tables': {
    async up(db, dialect) {
      await runDdl(db, dialect, DDL + DENIAL_DDL);
      if (dialect === 'postgres') {
        await sql`ALTER TABLE identities ADD COLUMN IF NOT EXISTS allowed_networks TEXT`.execute(db);
        return;
      }
      // SQLite has no ADD COLUMN IF NOT EXISTS; databases of every earlier version pass through here.
      const { rows: columns } = await sql<{ name: string }>`PRAGMA table_info(identities)`.execute(db);
      if (!columns.some((c) => c.name === 'allowed_networks'))
        await sql`ALTER TABLE identities ADD COLUMN allowed_networks TEXT`.execute(db);
      const { rows: legacy } =
        await sql`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'network_denials'`.execute(db);
      if (legacy.length > 0)
        for (const statement of MIGRATE_PER_REQUEST_LOG) await sql.raw(statement).execute(db);
    },
  },
};
registerMigrations(MANAGEMENT_MIGRATIONS);

interface IdentityRow {
  id: string;
  name: string;
  kind: 'user' | 'apiKey';
  secret_hash: string;
  trusted_service: number;
  created_at: number;
  allowed_networks: string | null;
}

interface IpSetRow {
  name: string;
  ranges: string;
  description: string;
  created_at: number;
  version: number;
}

interface ManagementTables {
  identities: IdentityRow;
  role_assignments: { principal_id: string; registry: string; role: RoleName };
  ip_sets: IpSetRow;
}

/**
 * Identities, role assignments, named IP sets and (through `SqlDenialLogStore`) the denial log, with one
 * set of queries for SQLite and PostgreSQL. Writes that change what a cache holds are published on `feed`.
 */
export class SqlManagementStore implements IdentityStore, DenialAuditStore, IpSetStore {
  private readonly db: Kysely<ManagementTables>;
  private readonly denials: SqlDenialLogStore;

  constructor(
    private readonly database: SqlDatabase,
    private readonly feed?: ChangeFeed,
  ) {
    this.db = database.db as Kysely<ManagementTables>;
    this.denials = new SqlDenialLogStore(database);
  }

  async createIdentity(identity: IdentityRecord): Promise<boolean> {
    // No conflict target: a taken id and a taken name both make it a no-op.
    const result = await this.db
      .insertInto('identities')
      .values({
        id: identity.id,
        name: identity.name,
        kind: identity.kind,
        secret_hash: identity.secretHash,
        trusted_service: identity.trustedService ? 1 : 0,
        created_at: identity.createdAt.getTime(),
        allowed_networks: identity.allowedNetworks ? JSON.stringify(identity.allowedNetworks) : null,
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return publishIf(this.feed, touched(result) > 0, { kind: 'identity', id: identity.id });
  }

  async getIdentity(id: string): Promise<IdentityRecord | undefined> {
    const row = await this.db.selectFrom('identities').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toIdentity(row);
  }

  async findIdentityByName(name: string): Promise<IdentityRecord | undefined> {
    const row = await this.db
      .selectFrom('identities')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toIdentity(row);
  }

  async listIdentities(kind?: IdentityRecord['kind']): Promise<IdentityRecord[]> {
    let query = this.db.selectFrom('identities').selectAll();
    if (kind) query = query.where('kind', '=', kind);
    return (await query.orderBy('name').execute()).map(toIdentity);
  }

  async deleteIdentity(id: string): Promise<boolean> {
    const deleted = await writeTransaction<ManagementTables, boolean>(this.database, async (trx) => {
      await trx.deleteFrom('role_assignments').where('principal_id', '=', id).execute();
      return touched(await trx.deleteFrom('identities').where('id', '=', id).executeTakeFirst()) > 0;
    });
    return publishIf(this.feed, deleted, { kind: 'identity', id }, { kind: 'roles', principalId: id });
  }

  async countIdentities(): Promise<number> {
    const row = await this.db
      .selectFrom('identities')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async setRole(assignment: RoleAssignment): Promise<void> {
    await this.db
      .insertInto('role_assignments')
      .values({ principal_id: assignment.principalId, registry: assignment.registry, role: assignment.role })
      .onConflict((oc) =>
        oc.columns(['principal_id', 'registry']).doUpdateSet((eb) => ({ role: eb.ref('excluded.role') })),
      )
      .execute();
    publishIf(this.feed, true, { kind: 'roles', principalId: assignment.principalId });
  }

  async removeRole(principalId: string, registry: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('role_assignments')
      .where('principal_id', '=', principalId)
      .where('registry', '=', registry)
      .executeTakeFirst();
    return publishIf(this.feed, touched(result) > 0, { kind: 'roles', principalId });
  }

  async rolesOf(principalId: string): Promise<RoleAssignment[]> {
    const rows = await this.db
      .selectFrom('role_assignments')
      .select(['principal_id', 'registry', 'role'])
      .where('principal_id', '=', principalId)
      .orderBy('registry')
      .execute();
    return rows.map((r) => ({ principalId: r.principal_id, registry: r.registry, role: r.role }));
  }

  async deleteRolesForRegistry(registry: string): Promise<void> {
    const rows = await this.db
      .deleteFrom('role_assignments')
      .where('registry', '=', registry)
      .returning('principal_id')
      .execute();
    const principals = new Set(rows.map((r) => r.principal_id));
    publishIf(
      this.feed,
      true,
      ...[...principals].map((principalId): ChangeEvent => ({ kind: 'roles', principalId })),
    );
  }

  addDenialCounts(buckets: DenialBucket[]): Promise<void> {
    return this.denials.addDenialCounts(buckets);
  }

  queryDenials(
    registry: string,
    filter: { since?: Date; clientIp?: string; limit: number; seriesSince: Date },
  ): Promise<DenialQueryResult> {
    return this.denials.queryDenials(registry, filter);
  }

  pruneDenials(before: Date, maxBuckets: number): Promise<{ deleted: number }> {
    return this.denials.pruneDenials(before, maxBuckets);
  }

  deleteDenialsForRegistry(registry: string): Promise<void> {
    return this.denials.deleteDenialsForRegistry(registry);
  }

  async listIpSets(): Promise<IpSetRecord[]> {
    return (await this.db.selectFrom('ip_sets').selectAll().orderBy('name').execute()).map(toIpSet);
  }

  async getIpSet(name: string): Promise<IpSetRecord | undefined> {
    const row = await this.db.selectFrom('ip_sets').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toIpSet(row);
  }

  async putIpSet(set: Omit<IpSetRecord, 'version'>, expectedVersion: number): Promise<boolean> {
    const ranges = JSON.stringify(set.ranges);
    // Compare-and-swap on the version: of several nodes writing at one version, one matches.
    const result =
      expectedVersion === 0
        ? await this.db
            .insertInto('ip_sets')
            .values({
              name: set.name,
              ranges,
              description: set.description,
              created_at: set.createdAt.getTime(),
              version: 1,
            })
            .onConflict((oc) => oc.doNothing())
            .executeTakeFirst()
        : await this.db
            .updateTable('ip_sets')
            .set((eb) => ({ ranges, description: set.description, version: eb('version', '+', 1) }))
            .where('name', '=', set.name)
            .where('version', '=', expectedVersion)
            .executeTakeFirst();
    return publishIf(this.feed, touched(result) > 0, { kind: 'ipSet', name: set.name });
  }

  async deleteIpSet(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('ip_sets').where('name', '=', name).executeTakeFirst();
    return publishIf(this.feed, touched(result) > 0, { kind: 'ipSet', name });
  }
}

function toIdentity(row: IdentityRow): IdentityRecord {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    secretHash: row.secret_hash,
    trustedService: row.trusted_service === 1,
    ...(row.allowed_networks ? { allowedNetworks: JSON.parse(row.allowed_networks) as string[] } : {}),
    createdAt: new Date(row.created_at),
  };
}

function toIpSet(row: IpSetRow): IpSetRecord {
  return {
    name: row.name,
    ranges: JSON.parse(row.ranges) as string[],
    description: row.description,
    createdAt: new Date(row.created_at),
    version: row.version,
  };
}
