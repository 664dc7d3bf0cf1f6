import type { Generated, Kysely } from 'kysely';
import type { AttemptOutcome, DeliveryRecord, WebhookRecord, WebhookStore } from '../webhook-types.js';
import type { SqlDatabase } from './database.js';
import { registerMigrations, type MigrationSet } from './migrations.js';
import { chunks, runDdl, touched } from './statements.js';
import { writeTransaction } from './transaction.js';

/** The schema the embedded SQLite store has always had. */
const DDL = `
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
  ROWID_COLUMN
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

/** The webhook store's schema steps. */
export const WEBHOOK_MIGRATIONS: MigrationSet = {
  '0004-webhooks-tables': { up: (db, dialect) => runDdl(db, dialect, DDL) },
};
registerMigrations(WEBHOOK_MIGRATIONS);

/** Deliveries kept per webhook in the log; older ones are dropped as new ones finish. */
const LOG_KEPT = 200;
/** Deliveries per insert statement (11 parameters each). */
const DELIVERIES_PER_STATEMENT = 200;

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

interface WebhookTables {
  webhooks: WebhookRow;
  /** `rowid` is SQLite's implicit one, an identity column on PostgreSQL: insertion order. */
  webhook_deliveries: DeliveryRow & { rowid: Generated<number> };
}

const DELIVERY_COLUMNS = [
  'id',
  'registry',
  'webhook',
  'event_id',
  'action',
  'payload',
  'status',
  'attempts',
  'next_attempt_at',
  'last_status_code',
  'last_error',
  'created_at',
  'updated_at',
] as const;

/** Webhooks and their durable delivery queue, with one set of queries for SQLite and PostgreSQL. */
export class SqlWebhookStore implements WebhookStore {
  private readonly db: Kysely<WebhookTables>;

  constructor(private readonly database: SqlDatabase) {
    this.db = database.db as Kysely<WebhookTables>;
  }

  async createWebhook(webhook: WebhookRecord): Promise<boolean> {
    const result = await this.db
      .insertInto('webhooks')
      .values(toRow(webhook))
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return touched(result) > 0;
  }

  async updateWebhook(webhook: WebhookRecord): Promise<boolean> {
    const { service_uri, actions, scope, custom_headers, status } = toRow(webhook);
    const result = await this.db
      .updateTable('webhooks')
      .set({ service_uri, actions, scope, custom_headers, status })
      .where('registry', '=', webhook.registry)
      .where('name', '=', webhook.name)
      .executeTakeFirst();
    return touched(result) > 0;
  }

  async getWebhook(registry: string, name: string): Promise<WebhookRecord | undefined> {
    const row = await this.db
      .selectFrom('webhooks')
      .selectAll()
      .where('registry', '=', registry)
      .where('name', '=', name)
      .executeTakeFirst();
    return row && fromRow(row);
  }

  async listWebhooks(registry: string): Promise<WebhookRecord[]> {
    const rows = await this.db
      .selectFrom('webhooks')
      .selectAll()
      .where('registry', '=', registry)
      .orderBy('name')
      .execute();
    return rows.map(fromRow);
  }

  async deleteWebhook(registry: string, name: string): Promise<boolean> {
    return writeTransaction<WebhookTables, boolean>(this.database, async (trx) => {
      await trx
        .deleteFrom('webhook_deliveries')
        .where('registry', '=', registry)
        .where('webhook', '=', name)
        .execute();
      const result = await trx
        .deleteFrom('webhooks')
        .where('registry', '=', registry)
        .where('name', '=', name)
        .executeTakeFirst();
      return touched(result) > 0;
    });
  }

  async deleteRegistryWebhooks(registry: string): Promise<void> {
    await writeTransaction<WebhookTables, void>(this.database, async (trx) => {
      await trx.deleteFrom('webhook_deliveries').where('registry', '=', registry).execute();
      await trx.deleteFrom('webhooks').where('registry', '=', registry).execute();
    });
  }

  async enqueue(deliveries: DeliveryRecord[]): Promise<void> {
    const rows = deliveries.map((d) => ({
      id: d.id,
      registry: d.registry,
      webhook: d.webhook,
      event_id: d.eventId,
      action: d.action,
      payload: d.payload,
      status: 'pending' as const,
      attempts: 0,
      next_attempt_at: d.nextAttemptAt,
      last_status_code: null,
      last_error: null,
      created_at: d.createdAt.getTime(),
      updated_at: d.createdAt.getTime(),
    }));
    const slices = chunks(rows, DELIVERIES_PER_STATEMENT);
    // One event's deliveries are queued all or none (one statement is atomic by itself).
    if (slices.length === 1) await this.db.insertInto('webhook_deliveries').values(slices[0]!).execute();
    else if (slices.length > 1)
      await writeTransaction<WebhookTables, void>(this.database, async (trx) => {
        for (const slice of slices) await trx.insertInto('webhook_deliveries').values(slice).execute();
      });
  }

  async claimDue(now: number, limit: number, claimMs: number): Promise<DeliveryRecord[]> {
    // One statement: pick the due ones and push them back. On PostgreSQL the picked rows are locked and
    // rows another node is claiming at this moment are skipped (SKIP LOCKED), and the outer conditions
    // are re-checked on the row as committed, so two nodes never hand out the same delivery; on SQLite a
    // statement is atomic.
    let due = this.db
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .orderBy('next_attempt_at')
      .limit(limit);
    if (this.database.dialect === 'postgres') due = due.forUpdate().skipLocked();
    const rows = await this.db
      .updateTable('webhook_deliveries')
      .set({ next_attempt_at: now + claimMs })
      .where('id', 'in', due)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .returning(DELIVERY_COLUMNS)
      .execute();
    return rows.map(fromDeliveryRow).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  async recordAttempt(id: string, outcome: AttemptOutcome): Promise<void> {
    const owner = await this.db
      .updateTable('webhook_deliveries')
      .set((eb) => ({
        status: outcome.status,
        attempts: eb('attempts', '+', 1),
        next_attempt_at: outcome.nextAttemptAt,
        last_status_code: outcome.statusCode ?? null,
        last_error: outcome.error ?? null,
        updated_at: Date.now(),
      }))
      .where('id', '=', id)
      .returning(['registry', 'webhook'])
      .executeTakeFirst();
    if (!owner || outcome.status === 'pending') return;
    // The log keeps the newest deliveries of each webhook; finished ones beyond that go.
    const kept = this.db
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('registry', '=', owner.registry)
      .where('webhook', '=', owner.webhook)
      .orderBy('created_at', 'desc')
      .limit(LOG_KEPT);
    await this.db
      .deleteFrom('webhook_deliveries')
      .where('registry', '=', owner.registry)
      .where('webhook', '=', owner.webhook)
      .where('status', '<>', 'pending')
      .where('id', 'not in', kept)
      .execute();
  }

  async listDeliveries(registry: string, webhook: string, limit: number): Promise<DeliveryRecord[]> {
    const rows = await this.db
      .selectFrom('webhook_deliveries')
      .select(DELIVERY_COLUMNS)
      .where('registry', '=', registry)
      .where('webhook', '=', webhook)
      .orderBy('created_at', 'desc')
      .orderBy('rowid', 'desc')
      .limit(limit)
      .execute();
    return rows.map(fromDeliveryRow);
  }

  async close(): Promise<void> {
    // The database handle belongs to whoever opened it (several stores share it).
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
