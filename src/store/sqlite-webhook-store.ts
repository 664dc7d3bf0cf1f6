import type Database from 'better-sqlite3';
import { openSqlite } from './sqlite.js';
import type { AttemptOutcome, DeliveryRecord, WebhookRecord, WebhookStore } from './webhook-types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS webhooks (
  registry TEXT NOT NULL,
  name TEXT NOT NULL,
  service_uri TEXT NOT NULL,
  actions TEXT NOT NULL,
  scope TEXT NOT NULL,
  custom_headers TEXT NOT NULL,
  status TEXT NOT NULL,
  secret TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (registry, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id TEXT PRIMARY KEY,
  registry TEXT NOT NULL,
  webhook TEXT NOT NULL,
  event_id TEXT NOT NULL,
  action TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_status_code INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_hook ON webhook_deliveries (registry, webhook, created_at);
`;

/** Deliveries kept per webhook in the log; older ones are dropped as new ones finish. */
const LOG_KEPT = 200;

interface WebhookRow {
  registry: string;
  name: string;
  service_uri: string;
  actions: string;
  scope: string;
  custom_headers: string;
  status: WebhookRecord['status'];
  secret: string;
  created_at: number;
}

interface DeliveryRow {
  id: string;
  registry: string;
  webhook: string;
  event_id: string;
  action: string;
  payload: string;
  status: DeliveryRecord['status'];
  attempts: number;
  next_attempt_at: number;
  last_status_code: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

/** Webhooks and deliveries in the embedded database (its own connection, WAL). */
export class SqliteWebhookStore implements WebhookStore {
  private readonly db: Database.Database;
  private readonly stmt;

  constructor(path: string) {
    this.db = openSqlite(path, SCHEMA);
    const db = this.db;
    this.stmt = {
      insert: db.prepare(
        `INSERT INTO webhooks (registry, name, service_uri, actions, scope, custom_headers, status, secret, created_at)
         VALUES (@registry, @name, @service_uri, @actions, @scope, @custom_headers, @status, @secret, @created_at)
         ON CONFLICT DO NOTHING`,
      ),
      update: db.prepare(
        `UPDATE webhooks SET service_uri = @service_uri, actions = @actions, scope = @scope,
         custom_headers = @custom_headers, status = @status WHERE registry = @registry AND name = @name`,
      ),
      get: db.prepare('SELECT * FROM webhooks WHERE registry = ? AND name = ?'),
      list: db.prepare('SELECT * FROM webhooks WHERE registry = ? ORDER BY name'),
      delete: db.prepare('DELETE FROM webhooks WHERE registry = ? AND name = ?'),
      deleteDeliveries: db.prepare('DELETE FROM webhook_deliveries WHERE registry = ? AND webhook = ?'),
      enqueue: db.prepare(
        `INSERT INTO webhook_deliveries (id, registry, webhook, event_id, action, payload, status, attempts,
         next_attempt_at, created_at, updated_at)
         VALUES (@id, @registry, @webhook, @eventId, @action, @payload, 'pending', 0, @nextAttemptAt, @at, @at)`,
      ),
      due: db.prepare(
        `SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?
         ORDER BY next_attempt_at LIMIT ?`,
      ),
      claim: db.prepare('UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?'),
      attempt: db.prepare(
        `UPDATE webhook_deliveries SET status = @status, attempts = attempts + 1, next_attempt_at = @next,
         last_status_code = @code, last_error = @error, updated_at = @at WHERE id = @id`,
      ),
      owner: db.prepare('SELECT registry, webhook FROM webhook_deliveries WHERE id = ?'),
      trim: db.prepare(
        `DELETE FROM webhook_deliveries WHERE registry = @registry AND webhook = @webhook AND status <> 'pending'
         AND id NOT IN (SELECT id FROM webhook_deliveries WHERE registry = @registry AND webhook = @webhook
                        ORDER BY created_at DESC LIMIT @kept)`,
      ),
      deliveries: db.prepare(
        `SELECT * FROM webhook_deliveries WHERE registry = ? AND webhook = ? ORDER BY created_at DESC, rowid DESC LIMIT ?`,
      ),
    };
  }

  async createWebhook(webhook: WebhookRecord): Promise<boolean> {
    return this.stmt.insert.run(toRow(webhook)).changes > 0;
  }

  async updateWebhook(webhook: WebhookRecord): Promise<boolean> {
    return this.stmt.update.run(toRow(webhook)).changes > 0;
  }

  async getWebhook(registry: string, name: string): Promise<WebhookRecord | undefined> {
    const row = this.stmt.get.get(registry, name) as WebhookRow | undefined;
    return row && fromRow(row);
  }

  async listWebhooks(registry: string): Promise<WebhookRecord[]> {
    return (this.stmt.list.all(registry) as WebhookRow[]).map(fromRow);
  }

  async deleteWebhook(registry: string, name: string): Promise<boolean> {
    return this.db
      .transaction(() => {
        this.stmt.deleteDeliveries.run(registry, name);
        return this.stmt.delete.run(registry, name).changes > 0;
      })
      .immediate();
  }

  async deleteRegistryWebhooks(registry: string): Promise<void> {
    this.db
      .transaction(() => {
        this.db.prepare('DELETE FROM webhook_deliveries WHERE registry = ?').run(registry);
        this.db.prepare('DELETE FROM webhooks WHERE registry = ?').run(registry);
      })
      .immediate();
  }

  async enqueue(deliveries: DeliveryRecord[]): Promise<void> {
    this.db
      .transaction(() => {
        for (const d of deliveries) this.stmt.enqueue.run({ ...d, at: d.createdAt.getTime() });
      })
      .immediate();
  }

  async claimDue(now: number, limit: number, claimMs: number): Promise<DeliveryRecord[]> {
    return this.db
      .transaction(() => {
        const rows = this.stmt.due.all(now, limit) as DeliveryRow[];
        for (const row of rows) this.stmt.claim.run(now + claimMs, row.id);
        return rows.map(fromDeliveryRow);
      })
      .immediate();
  }

  async recordAttempt(id: string, outcome: AttemptOutcome): Promise<void> {
    this.db
      .transaction(() => {
        this.stmt.attempt.run({
          id,
          status: outcome.status,
          next: outcome.nextAttemptAt,
          code: outcome.statusCode ?? null,
          error: outcome.error ?? null,
          at: Date.now(),
        });
        const owner = this.stmt.owner.get(id) as { registry: string; webhook: string } | undefined;
        if (owner && outcome.status !== 'pending') this.stmt.trim.run({ ...owner, kept: LOG_KEPT });
      })
      .immediate();
  }

  async listDeliveries(registry: string, webhook: string, limit: number): Promise<DeliveryRecord[]> {
    return (this.stmt.deliveries.all(registry, webhook, limit) as DeliveryRow[]).map(fromDeliveryRow);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

function toRow(w: WebhookRecord): WebhookRow {
  return {
    registry: w.registry,
    name: w.name,
    service_uri: w.serviceUri,
    actions: JSON.stringify(w.actions),
    scope: w.scope,
    custom_headers: JSON.stringify(w.customHeaders),
    status: w.status,
    secret: w.secret,
    created_at: w.createdAt.getTime(),
  };
}

function fromRow(row: WebhookRow): WebhookRecord {
  return {
    registry: row.registry,
    name: row.name,
    serviceUri: row.service_uri,
    actions: JSON.parse(row.actions) as WebhookRecord['actions'],
    scope: row.scope,
    customHeaders: JSON.parse(row.custom_headers) as Record<string, string>,
    status: row.status,
    secret: row.secret,
    createdAt: new Date(row.created_at),
  };
}

function fromDeliveryRow(row: DeliveryRow): DeliveryRecord {
  return {
    id: row.id,
    registry: row.registry,
    webhook: row.webhook,
    eventId: row.event_id,
    action: row.action,
    payload: row.payload,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastStatusCode: row.last_status_code ?? undefined,
    lastError: row.last_error ?? undefined,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}
