import type Database from 'better-sqlite3';
import { openSqlite } from './sqlite.js';
import type {
  DenialAuditStore,
  DenialRecord,
  IdentityRecord,
  IdentityStore,
  RoleAssignment,
  RoleName,
} from './types.js';

const SCHEMA = `
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
CREATE TABLE IF NOT EXISTS network_denials (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  registry TEXT NOT NULL,
  time INTEGER NOT NULL,
  client_ip TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  reason TEXT NOT NULL,
  entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS network_denials_by_registry ON network_denials (registry, time);
`;

interface IdentityRow {
  id: string;
  name: string;
  kind: 'user' | 'apiKey';
  secret_hash: string;
  trusted_service: number;
  created_at: number;
}

interface DenialRow {
  registry: string;
  time: number;
  client_ip: string;
  method: string;
  path: string;
  reason: string;
  entry: string;
}

/** Identities, roles and the denial log in the embedded SQLite database (its own connection, WAL). */
export class SqliteManagementStore implements IdentityStore, DenialAuditStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = openSqlite(path, SCHEMA);
  }

  async createIdentity(identity: IdentityRecord): Promise<boolean> {
    const info = this.db
      .prepare(
        `INSERT INTO identities (id, name, kind, secret_hash, trusted_service, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING`,
      )
      .run(
        identity.id,
        identity.name,
        identity.kind,
        identity.secretHash,
        identity.trustedService ? 1 : 0,
        identity.createdAt.getTime(),
      );
    return info.changes > 0;
  }

  async getIdentity(id: string): Promise<IdentityRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM identities WHERE id = ?').get(id) as IdentityRow | undefined;
    return row && toIdentity(row);
  }

  async findIdentityByName(name: string): Promise<IdentityRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM identities WHERE name = ?').get(name) as
      IdentityRow | undefined;
    return row && toIdentity(row);
  }

  async listIdentities(kind?: IdentityRecord['kind']): Promise<IdentityRecord[]> {
    const rows = (
      kind
        ? this.db.prepare('SELECT * FROM identities WHERE kind = ? ORDER BY name').all(kind)
        : this.db.prepare('SELECT * FROM identities ORDER BY name').all()
    ) as IdentityRow[];
    return rows.map(toIdentity);
  }

  async deleteIdentity(id: string): Promise<boolean> {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM role_assignments WHERE principal_id = ?').run(id);
      return this.db.prepare('DELETE FROM identities WHERE id = ?').run(id).changes > 0;
    })();
  }

  async countIdentities(): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM identities').get() as { n: number }).n;
  }

  async setRole(assignment: RoleAssignment): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO role_assignments (principal_id, registry, role) VALUES (?, ?, ?)
         ON CONFLICT (principal_id, registry) DO UPDATE SET role = excluded.role`,
      )
      .run(assignment.principalId, assignment.registry, assignment.role);
  }

  async removeRole(principalId: string, registry: string): Promise<boolean> {
    return (
      this.db
        .prepare('DELETE FROM role_assignments WHERE principal_id = ? AND registry = ?')
        .run(principalId, registry).changes > 0
    );
  }

  async rolesOf(principalId: string): Promise<RoleAssignment[]> {
    const rows = this.db
      .prepare(
        'SELECT principal_id, registry, role FROM role_assignments WHERE principal_id = ? ORDER BY registry',
      )
      .all(principalId) as { principal_id: string; registry: string; role: RoleName }[];
    return rows.map((r) => ({ principalId: r.principal_id, registry: r.registry, role: r.role }));
  }

  async deleteRolesForRegistry(registry: string): Promise<void> {
    this.db.prepare('DELETE FROM role_assignments WHERE registry = ?').run(registry);
  }

  async appendDenials(records: DenialRecord[]): Promise<void> {
    const insert = this.db.prepare(
      'INSERT INTO network_denials (registry, time, client_ip, method, path, reason, entry) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      for (const r of records)
        insert.run(r.registry, r.time.getTime(), r.clientIp, r.method, r.path, r.reason, r.entry);
    })();
  }

  async queryDenials(
    registry: string,
    filter: { since?: Date; clientIp?: string; limit: number },
  ): Promise<{ denials: DenialRecord[]; countsByIp: { clientIp: string; count: number; lastSeen: Date }[] }> {
    const since = filter.since?.getTime() ?? 0;
    const ip = filter.clientIp ?? null;
    const rows = this.db
      .prepare(
        `SELECT registry, time, client_ip, method, path, reason, entry FROM network_denials
         WHERE registry = ? AND time >= ? AND (? IS NULL OR client_ip = ?) ORDER BY time DESC, id DESC LIMIT ?`,
      )
      .all(registry, since, ip, ip, filter.limit) as DenialRow[];
    const counts = this.db
      .prepare(
        `SELECT client_ip, COUNT(*) AS count, MAX(time) AS last_seen FROM network_denials
         WHERE registry = ? AND time >= ? AND (? IS NULL OR client_ip = ?) GROUP BY client_ip ORDER BY count DESC, client_ip`,
      )
      .all(registry, since, ip, ip) as { client_ip: string; count: number; last_seen: number }[];
    return {
      denials: rows.map((r) => ({
        registry: r.registry,
        time: new Date(r.time),
        clientIp: r.client_ip,
        method: r.method,
        path: r.path,
        reason: r.reason,
        entry: r.entry,
      })),
      countsByIp: counts.map((c) => ({
        clientIp: c.client_ip,
        count: c.count,
        lastSeen: new Date(c.last_seen),
      })),
    };
  }

  async deleteDenialsForRegistry(registry: string): Promise<void> {
    this.db.prepare('DELETE FROM network_denials WHERE registry = ?').run(registry);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

function toIdentity(row: IdentityRow): IdentityRecord {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    secretHash: row.secret_hash,
    trustedService: row.trusted_service === 1,
    createdAt: new Date(row.created_at),
  };
}
