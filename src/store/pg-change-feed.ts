import pg from 'pg';
import type { Logger } from 'pino';
import type { ChangeEvent, ChangeFeed, ChangeKind } from './change-feed.js';
import { DatabaseConfigError, parsePostgresUrl } from './sql/database.js';

/** The NOTIFY channel every node publishes on and listens to. */
export const CHANGE_CHANNEL = 'berth_changes';

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7900;
/** Notifications waiting to be sent while the database is slow or away; beyond, events are dropped. */
const MAX_PENDING = 10_000;
const KINDS: ReadonlySet<ChangeKind> = new Set<ChangeKind>([
  'registry',
  'ipSet',
  'token',
  'scopeMap',
  'identity',
  'roles',
  'signingKey',
  'manifest',
  'resync',
]);

/** How a `PgChangeFeed` connects and how often it resyncs. */
export interface PgChangeFeedOptions {
  /** The PostgreSQL URL (`BERTH_DATABASE_URL`). */
  url: string;
  /** This node's id: its own notifications come back to it and are ignored by it. */
  nodeId: string;
  log: Logger;
  /** A `resync` is delivered this often as a safety net (default 30 s; 0 turns it off). */
  resyncIntervalMs?: number;
  /** The first reconnect delay after the LISTEN connection drops (doubling up to `maxReconnectMs`). */
  reconnectMs?: number;
  maxReconnectMs?: number;
  /**
   * How often the LISTEN connection is probed with a query (default 10 s; 0 turns it off). A peer that
   * vanished without closing the TCP connection (a partition, a failed-over server) sends no error: the
   * probe's timeout is what notices, and the feed reconnects (and resyncs).
   */
  heartbeatMs?: number;
}

/** What travels in a notification: which node published, and the event. */
interface Envelope {
  node: string;
  event: ChangeEvent;
}

/**
 * The change feed across nodes, over PostgreSQL `LISTEN/NOTIFY`. `publish` delivers to this node's
 * subscribers at once and then sends `pg_notify` (in publish order, through a one-connection pool, so
 * a failure is logged and never reaches the writer that published). A dedicated connection LISTENs and
 * delivers other nodes' events. Notifications are not queued for a node that is not listening, so when
 * that connection drops the feed reconnects with capped exponential backoff and then delivers `resync`
 * (every cache drops everything); a periodic `resync` covers anything else that may have been missed.
 */
export class PgChangeFeed implements ChangeFeed {
  private readonly listeners = new Set<(event: ChangeEvent) => void>();
  private readonly pool: pg.Pool;
  private listenClient: pg.Client | undefined;
  private sending: Promise<void> = Promise.resolve();
  private pending = 0;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly resyncTimer: NodeJS.Timeout | undefined;
  private readonly heartbeatTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly options: PgChangeFeedOptions) {
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: 1,
      connectionTimeoutMillis: 10_000,
      application_name: `berth-feed-notify:${options.nodeId}`,
    });
    this.pool.on('error', (error) => options.log.warn({ err: error }, 'change feed notify connection lost'));
    const interval = options.resyncIntervalMs ?? 30_000;
    if (interval > 0) {
      this.resyncTimer = setInterval(() => this.deliver({ kind: 'resync' }), interval);
      this.resyncTimer.unref();
    }
    const heartbeat = options.heartbeatMs ?? 10_000;
    if (heartbeat > 0) {
      this.heartbeatTimer = setInterval(() => this.probe(heartbeat), heartbeat);
      this.heartbeatTimer.unref();
    }
  }

  /** Connects the LISTEN connection; fails, naming the setting, when PostgreSQL cannot be reached. */
  static async start(options: PgChangeFeedOptions): Promise<PgChangeFeed> {
    const feed = new PgChangeFeed(options);
    try {
      await feed.listen();
    } catch (error) {
      await feed.close();
      const { host, database } = parsePostgresUrl(options.url);
      throw new DatabaseConfigError(
        `database (BERTH_DATABASE_URL): cannot listen for changes on PostgreSQL at ${host}/${database}: ${(error as Error).message}`,
      );
    }
    return feed;
  }

  publish(event: ChangeEvent): void {
    this.deliver(event);
    if (this.closed) return;
    if (this.pending >= MAX_PENDING) {
      // Other nodes catch up at their next resync; this node's own caches already saw the event.
      this.options.log.warn(
        { kind: event.kind, pending: this.pending },
        'change feed backlog full, event not sent',
      );
      return;
    }
    let payload = JSON.stringify({ node: this.options.nodeId, event } satisfies Envelope);
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES)
      payload = JSON.stringify({ node: this.options.nodeId, event: { kind: 'resync' } } satisfies Envelope);
    this.pending++;
    this.sending = this.sending.then(async () => {
      try {
        await this.pool.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, payload]);
      } catch (error) {
        this.options.log.warn({ err: error, kind: event.kind }, 'change feed notify failed');
      } finally {
        this.pending--;
      }
    });
  }

  subscribe(listener: (event: ChangeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops the timers, sends what is queued, and closes both connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.resyncTimer);
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.reconnectTimer);
    const client = this.listenClient;
    this.listenClient = undefined;
    await client?.end().catch(() => undefined);
    await this.sending;
    await this.pool.end().catch(() => undefined);
    this.listeners.clear();
  }

  private deliver(event: ChangeEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.options.log.error({ err: error, kind: event.kind }, 'change listener failed');
      }
    }
  }

  /** Opens the LISTEN connection; it is the feed's only once `LISTEN` succeeded. */
  private async listen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.url,
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
      application_name: `berth-feed-listen:${this.options.nodeId}`,
    });
    client.on('notification', (message) => this.received(message.payload));
    client.on('error', (error) => {
      this.options.log.warn({ err: error }, 'change feed listen connection failed');
      this.lost(client);
    });
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listenClient = client;
  }

  /** Asks the LISTEN connection a question; no answer within `timeoutMs` means it is gone. */
  private probe(timeoutMs: number): void {
    const client = this.listenClient;
    if (!client) return;
    client.query({ text: 'SELECT 1', query_timeout: timeoutMs } as pg.QueryConfig).catch((error: unknown) => {
      this.options.log.warn({ err: error }, 'change feed listen connection unresponsive');
      this.lost(client);
    });
  }

  private received(payload: string | undefined): void {
    const envelope = parseEnvelope(payload);
    if (!envelope) {
      this.options.log.warn({ bytes: payload?.length ?? 0 }, 'change feed notification not understood');
      return;
    }
    if (envelope.node === this.options.nodeId) return;
    this.deliver(envelope.event);
  }

  private lost(client: pg.Client): void {
    if (this.listenClient !== client) return;
    this.listenClient = undefined;
    client.end().catch(() => undefined);
    if (!this.closed) this.reconnect(0);
  }

  private reconnect(attempt: number): void {
    const first = this.options.reconnectMs ?? 100;
    const delay = Math.min(this.options.maxReconnectMs ?? 10_000, first * 2 ** Math.min(attempt, 20));
    this.reconnectTimer = setTimeout(() => {
      this.listen().then(
        () => {
          if (this.closed) return;
          this.options.log.info({ attempts: attempt + 1 }, 'change feed reconnected');
          // Whatever was published while nobody listened is lost: every cache starts over.
          this.deliver({ kind: 'resync' });
        },
        (error: unknown) => {
          this.options.log.warn({ err: error, attempt: attempt + 1 }, 'change feed reconnect failed');
          if (!this.closed) this.reconnect(attempt + 1);
        },
      );
    }, delay);
  }
}

/** A notification's envelope, or undefined when it is not one a Berth node sent. */
function parseEnvelope(payload: string | undefined): Envelope | undefined {
  if (!payload) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { node, event } = value as { node?: unknown; event?: unknown };
  if (typeof node !== 'string' || typeof event !== 'object' || event === null) return undefined;
  const kind = (event as { kind?: unknown }).kind;
  if (typeof kind !== 'string' || !KINDS.has(kind as ChangeKind)) return undefined;
  return { node, event: event as ChangeEvent };
}
