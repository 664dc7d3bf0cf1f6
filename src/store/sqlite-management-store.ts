import type Database from 'better-sqlite3';
import { openSqlite } from './sqlite.js';
import {
  DENIAL_SAMPLES,
  type DenialAuditStore,
  type DenialBucket,
  type DenialQueryResult,
  type IdentityRecord,
  type IdentityStore,
  type IpSetRecord,
  type IpSetStore,
  type RoleAssignment,
  type RoleName,
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
CREATE TABLE IF NOT EXISTS network_denial_counts (
  registry TEXT NOT NULL,
  minute INTEGER NOT NULL,
  client_ip TEXT NOT NULL,
  reason TEXT NOT NULL,
  entry TEXT NOT NULL,
  report_only INTEGER NOT NULL,
  count INTEGER NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  samples TEXT NOT NULL,
  PRIMARY KEY (registry, minute, client_ip, reason, entry, report_only)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS network_denial_counts_by_last_seen ON network_denial_counts (registry, last_seen);
CREATE INDEX IF NOT EXISTS network_denial_counts_by_minute ON network_denial_counts (minute);
CREATE TABLE IF NOT EXISTS ip_sets (
  name TEXT PRIMARY KEY,
  ranges TEXT NOT NULL,
  description TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  version INTEGER NOT NULL
);
`;

interface IdentityRow {
  id: string;
  name: string;
  kind: 'user' | 'apiKey';
  secret_hash: string;
  trusted_service: number;
  created_at: number;
  allowed_networks: string | null;
}

interface BucketRow {
  registry: string;
  minute: number;
  client_ip: string;
  reason: string;
  entry: string;
  report_only: number;
  count: number;
  first_seen: number;
  last_seen: number;
  samples: string;
}

// Logs from before aggregation (one row per request) become buckets once, on first start.
const MIGRATE_PER_REQUEST_LOG = `
INSERT INTO network_denial_counts
  (registry, minute, client_ip, reason, entry, report_only, count, first_seen, last_seen, samples)
SELECT registry, (time / 60000) * 60000, client_ip, reason, entry, 0, COUNT(*), MIN(time), MAX(time), '[]'
FROM network_denials GROUP BY registry, (time / 60000) * 60000, client_ip, reason, entry
ON CONFLICT DO NOTHING;
DROP TABLE network_denials;
`;

/** Identities, roles, IP sets and the denial log in the embedded SQLite database (own connection, WAL). */
export class SqliteManagementStore implements IdentityStore, DenialAuditStore, IpSetStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = openSqlite(path, SCHEMA);
    const columns = this.db.prepare('PRAGMA table_info(identities)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'allowed_networks'))
      this.db.exec('ALTER TABLE identities ADD COLUMN allowed_networks TEXT');
    const legacy = this.db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'network_denials'")
      .get();
    if (legacy) this.db.transaction(() => this.db.exec(MIGRATE_PER_REQUEST_LOG))();
  }

  async createIdentity(identity: IdentityRecord): Promise<boolean> {
    const info = this.db
      .prepare(
        `INSERT INTO identities (id, name, kind, secret_hash, trusted_service, created_at, allowed_networks)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      )
      .run(
        identity.id,
        identity.name,
        identity.kind,
        identity.secretHash,
        identity.trustedService ? 1 : 0,
        identity.createdAt.getTime(),
        identity.allowedNetworks ? JSON.stringify(identity.allowedNetworks) : null,
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

  async addDenialCounts(buckets: DenialBucket[]): Promise<void> {
    const key =
      'registry = ? AND minute = ? AND client_ip = ? AND reason = ? AND entry = ? AND report_only = ?';
    const read = this.db.prepare(`SELECT samples FROM network_denial_counts WHERE ${key}`);
    const upsert = this.db.prepare(
      `INSERT INTO network_denial_counts
         (registry, minute, client_ip, reason, entry, report_only, count, first_seen, last_seen, samples)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (registry, minute, client_ip, reason, entry, report_only) DO UPDATE SET
         count = count + excluded.count,
         first_seen = MIN(first_seen, excluded.first_seen),
         last_seen = MAX(last_seen, excluded.last_seen),
         samples = excluded.samples`,
    );
    this.db.transaction(() => {
      for (const b of buckets) {
        const id = [b.registry, b.minute.getTime(), b.clientIp, b.reason, b.entry, b.reportOnly ? 1 : 0];
        const stored = read.get(...id) as { samples: string } | undefined;
        const samples = mergeSamples(stored ? parseSamples(stored.samples) : [], b.samples);
        upsert.run(...id, b.count, b.firstSeen.getTime(), b.lastSeen.getTime(), JSON.stringify(samples));
      }
    })();
  }

  async queryDenials(
    registry: string,
    filter: { since?: Date; clientIp?: string; limit: number; seriesSince: Date },
  ): Promise<DenialQueryResult> {
    const since = filter.since?.getTime() ?? 0;
    const ip = filter.clientIp ?? null;
    const where = 'registry = ? AND last_seen >= ? AND (? IS NULL OR client_ip = ?)';
    const rows = this.db
      .prepare(
        `SELECT * FROM network_denial_counts WHERE ${where}
         ORDER BY last_seen DESC, client_ip, reason LIMIT ?`,
      )
      .all(registry, since, ip, ip, filter.limit) as BucketRow[];
    const counts = this.db
      .prepare(
        `SELECT client_ip, SUM(count) AS count, MAX(last_seen) AS last_seen FROM network_denial_counts
         WHERE ${where} GROUP BY client_ip ORDER BY count DESC, client_ip`,
      )
      .all(registry, since, ip, ip) as { client_ip: string; count: number; last_seen: number }[];
    const series = this.db
      .prepare(
        `SELECT minute, reason, report_only, SUM(count) AS count FROM network_denial_counts
         WHERE ${where} GROUP BY minute, reason, report_only ORDER BY minute`,
      )
      .all(registry, filter.seriesSince.getTime(), ip, ip) as {
      minute: number;
      reason: string;
      report_only: number;
      count: number;
    }[];
    const timeSeries: DenialQueryResult['timeSeries'] = [];
    for (const row of series) {
      let point = timeSeries[timeSeries.length - 1];
      if (!point || point.minute.getTime() !== row.minute) {
        point = { minute: new Date(row.minute), counts: {} };
        timeSeries.push(point);
      }
      // Would-be denials of report-only mode are counted apart, so a chart never mixes them in.
      const key = row.report_only ? `reportOnly:${row.reason}` : row.reason;
      point.counts[key] = (point.counts[key] ?? 0) + row.count;
    }
    return {
      buckets: rows.map(toBucket),
      countsByIp: counts.map((c) => ({
        clientIp: c.client_ip,
        count: c.count,
        lastSeen: new Date(c.last_seen),
      })),
      timeSeries,
    };
  }

  async pruneDenials(before: Date, maxBuckets: number): Promise<{ deleted: number }> {
    return this.db.transaction(() => {
      let deleted = this.db
        .prepare('DELETE FROM network_denial_counts WHERE minute < ?')
        .run(before.getTime()).changes;
      const { n } = this.db.prepare('SELECT COUNT(*) AS n FROM network_denial_counts').get() as { n: number };
      if (n > maxBuckets) {
        // Whole minutes go, oldest first, so what remains of any minute is complete.
        const cut = this.db
          .prepare('SELECT minute FROM network_denial_counts ORDER BY minute DESC LIMIT 1 OFFSET ?')
          .get(maxBuckets) as { minute: number };
        deleted += this.db
          .prepare('DELETE FROM network_denial_counts WHERE minute <= ?')
          .run(cut.minute).changes;
      }
      return { deleted };
    })();
  }

  async listIpSets(): Promise<IpSetRecord[]> {
    return (this.db.prepare('SELECT * FROM ip_sets ORDER BY name').all() as IpSetRow[]).map(toIpSet);
  }

  async getIpSet(name: string): Promise<IpSetRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM ip_sets WHERE name = ?').get(name) as IpSetRow | undefined;
    return row && toIpSet(row);
  }

  async putIpSet(set: Omit<IpSetRecord, 'version'>, expectedVersion: number): Promise<boolean> {
    const ranges = JSON.stringify(set.ranges);
    const info =
      expectedVersion === 0
        ? this.db
            .prepare(
              `INSERT INTO ip_sets (name, ranges, description, created_at, version) VALUES (?, ?, ?, ?, 1)
               ON CONFLICT DO NOTHING`,
            )
            .run(set.name, ranges, set.description, set.createdAt.getTime())
        : this.db
            .prepare(
              'UPDATE ip_sets SET ranges = ?, description = ?, version = version + 1 WHERE name = ? AND version = ?',
            )
            .run(ranges, set.description, set.name, expectedVersion);
    return info.changes > 0;
  }

  async deleteIpSet(name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM ip_sets WHERE name = ?').run(name).changes > 0;
  }

  async deleteDenialsForRegistry(registry: string): Promise<void> {
    this.db.prepare('DELETE FROM network_denial_counts WHERE registry = ?').run(registry);
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
    ...(row.allowed_networks ? { allowedNetworks: JSON.parse(row.allowed_networks) as string[] } : {}),
    createdAt: new Date(row.created_at),
  };
}

function toBucket(row: BucketRow): DenialBucket {
  return {
    registry: row.registry,
    minute: new Date(row.minute),
    clientIp: row.client_ip,
    reason: row.reason,
    entry: row.entry,
    reportOnly: row.report_only === 1,
    count: row.count,
    firstSeen: new Date(row.first_seen),
    lastSeen: new Date(row.last_seen),
    samples: parseSamples(row.samples),
  };
}

function parseSamples(text: string): { method: string; path: string }[] {
  return JSON.parse(text) as { method: string; path: string }[];
}

/** Distinct samples, the stored ones first, at most DENIAL_SAMPLES. */
function mergeSamples(
  stored: { method: string; path: string }[],
  fresh: { method: string; path: string }[],
): { method: string; path: string }[] {
  const merged = [...stored];
  for (const sample of fresh) {
    if (merged.length >= DENIAL_SAMPLES) break;
    if (!merged.some((m) => m.method === sample.method && m.path === sample.path)) merged.push(sample);
  }
  return merged;
}

interface IpSetRow {
  name: string;
  ranges: string;
  description: string;
  created_at: number;
  version: number;
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
