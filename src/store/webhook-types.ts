/** ACR's webhook actions, plus Berth's own `networkDenied`. */
export const WEBHOOK_ACTIONS = [
  'push',
  'delete',
  'quarantine',
  'chart_push',
  'chart_delete',
  'networkDenied',
] as const;
export type WebhookAction = (typeof WEBHOOK_ACTIONS)[number];

/** A registry's webhook as stored. */
export interface WebhookRecord {
  registry: string;
  name: string;
  serviceUri: string;
  actions: WebhookAction[];
  /** `repo`, `repo:tag`, `repo:*`, or empty for every repository. */
  scope: string;
  customHeaders: Record<string, string>;
  status: 'enabled' | 'disabled';
  /** Key of the HMAC-SHA256 signature each delivery carries. */
  secret: string;
  createdAt: Date;
}

/** One event to deliver to one webhook, and what became of it. */
export interface DeliveryRecord {
  id: string;
  registry: string;
  webhook: string;
  /** The event's id (the same for every webhook it goes to). */
  eventId: string;
  action: string;
  /** The JSON body sent. */
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: number;
  lastStatusCode: number | undefined;
  lastError: string | undefined;
  createdAt: Date;
  updatedAt: Date;
}

/** What one delivery attempt came to. */
export interface AttemptOutcome {
  status: DeliveryRecord['status'];
  nextAttemptAt: number;
  statusCode: number | undefined;
  error: string | undefined;
}

/** Webhooks and their durable delivery queue (deliveries survive a restart). */
export interface WebhookStore {
  createWebhook(webhook: WebhookRecord): Promise<boolean>;
  updateWebhook(webhook: WebhookRecord): Promise<boolean>;
  getWebhook(registry: string, name: string): Promise<WebhookRecord | undefined>;
  listWebhooks(registry: string): Promise<WebhookRecord[]>;
  /** Deletes a webhook and its delivery log. */
  deleteWebhook(registry: string, name: string): Promise<boolean>;
  deleteRegistryWebhooks(registry: string): Promise<void>;

  enqueue(deliveries: DeliveryRecord[]): Promise<void>;
  /**
   * Pending deliveries due by `now`, at most `limit`, claimed until `now + claimMs` (pushed back so
   * that another poll does not send them again while they are in flight).
   */
  claimDue(now: number, limit: number, claimMs: number): Promise<DeliveryRecord[]>;
  /** Records an attempt's outcome: delivered, failed for good, or pending again at `nextAttemptAt`. */
  recordAttempt(id: string, outcome: AttemptOutcome): Promise<void>;
  /** A webhook's deliveries, newest first. */
  listDeliveries(registry: string, webhook: string, limit: number): Promise<DeliveryRecord[]>;
  close(): Promise<void>;
}
