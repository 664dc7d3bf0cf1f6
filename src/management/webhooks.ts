import { randomBytes, randomUUID } from 'node:crypto';
import { ManagementError } from '../errors/management.js';
import { LocalChangeFeed, type ChangeFeed } from '../store/change-feed.js';
import {
  WEBHOOK_ACTIONS,
  type DeliveryRecord,
  type WebhookAction,
  type WebhookRecord,
  type WebhookStore,
} from '../store/webhook-types.js';

/** The `target` of an ACR event. */
export interface EventTarget {
  mediaType?: string | undefined;
  size?: number | undefined;
  digest?: string | undefined;
  length?: number | undefined;
  repository?: string | undefined;
  tag?: string | undefined;
  [extra: string]: unknown;
}

/** The `request` of an ACR event. */
export interface EventRequest {
  id: string;
  host: string;
  method: string;
  useragent: string;
}

/** What a caller may set on a webhook. */
export interface WebhookInput {
  serviceUri?: string;
  actions?: string[];
  scope?: string;
  customHeaders?: Record<string, string>;
  status?: string;
}

const NAME_RE = /^[a-zA-Z0-9]{5,50}$/;
const HEADER_NAME_RE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/;

/**
 * Webhooks as in ACR: per registry, for a set of actions and a repository scope; events are queued in
 * the store for delivery (src/management/webhook-delivery.ts), never sent on the request path.
 */
export class WebhookService {
  private wake: () => void = () => undefined;
  /**
   * Each registry's webhooks, read once per `listTtlMs` instead of on every manifest push and delete.
   * A change drops its registry's entry at once, on every node through the change feed; the TTL is a
   * safety net should an event be missed.
   */
  private readonly lists = new Map<string, { hooks: WebhookRecord[]; until: number }>();
  /** Bumped by every change, so a list read that raced one is not kept. */
  private generation = 0;

  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: WebhookStore,
    /** The node's change feed: changes are announced to every node, and other nodes' changes heard. */
    private readonly changes: ChangeFeed = new LocalChangeFeed(),
    private readonly listTtlMs = 10_000,
  ) {
    this.unsubscribe = changes.subscribe((event) => {
      if (event.kind === 'webhook' || (event.kind === 'registry' && event.change === 'deleted')) {
        this.generation++;
        this.lists.delete(event.registry);
      } else if (event.kind === 'resync') {
        this.generation++;
        this.lists.clear();
      }
    });
  }

  /** Stops following the change feed. */
  stop(): void {
    this.unsubscribe();
  }

  /** Called after events are queued, so the dispatcher need not wait for its next poll. */
  onQueued(wake: () => void): void {
    this.wake = wake;
  }

  /** Creates a webhook; its signing secret is returned this once. */
  async create(registry: string, name: string, input: WebhookInput): Promise<WebhookRecord> {
    if (!NAME_RE.test(name)) {
      throw new ManagementError('InvalidParameter', 'Webhook names are 5-50 letters and digits.', {
        target: 'name',
      });
    }
    if (input.serviceUri === undefined || input.actions === undefined) {
      throw new ManagementError('InvalidRequestContent', 'A webhook needs serviceUri and actions.');
    }
    const webhook: WebhookRecord = {
      registry,
      name,
      serviceUri: '',
      actions: [],
      scope: '',
      customHeaders: {},
      status: 'enabled',
      secret: randomBytes(32).toString('base64url'),
      createdAt: new Date(),
    };
    apply(webhook, input);
    const created = await this.store.createWebhook(webhook);
    this.changed(registry);
    if (!created) {
      throw new ManagementError('Conflict', `Webhook '${name}' already exists in registry '${registry}'.`);
    }
    return webhook;
  }

  /** Changes the given fields of a webhook. */
  async update(registry: string, name: string, input: WebhookInput): Promise<WebhookRecord> {
    const webhook = await this.get(registry, name);
    apply(webhook, input);
    await this.store.updateWebhook(webhook);
    this.changed(registry);
    return webhook;
  }

  async get(registry: string, name: string): Promise<WebhookRecord> {
    const webhook = await this.store.getWebhook(registry, name);
    if (!webhook) throw new ManagementError('ResourceNotFound', `Webhook '${name}' was not found.`);
    return webhook;
  }

  list(registry: string): Promise<WebhookRecord[]> {
    return this.store.listWebhooks(registry);
  }

  async delete(registry: string, name: string): Promise<void> {
    const deleted = await this.store.deleteWebhook(registry, name);
    this.changed(registry);
    if (!deleted) throw new ManagementError('ResourceNotFound', `Webhook '${name}' was not found.`);
  }

  /** Queues a `ping` event to one webhook (whatever its actions and status); returns the event id. */
  async ping(registry: string, name: string): Promise<string> {
    const webhook = await this.get(registry, name);
    const event = { id: randomUUID(), timestamp: new Date().toISOString(), action: 'ping' };
    await this.store.enqueue([delivery(webhook, event.id, 'ping', event)]);
    this.wake();
    return event.id;
  }

  /** A webhook's delivery log, newest first. */
  async events(registry: string, name: string): Promise<DeliveryRecord[]> {
    await this.get(registry, name);
    return this.store.listDeliveries(registry, name, 200);
  }

  /** Queues an event for every enabled webhook of the registry whose actions and scope match. */
  async publish(
    registry: string,
    action: WebhookAction,
    target: EventTarget,
    request?: EventRequest,
  ): Promise<void> {
    const hooks = (await this.webhooksOf(registry)).filter(
      (w) => w.status === 'enabled' && w.actions.includes(action) && inScope(w.scope, target),
    );
    if (hooks.length === 0) return;
    const event = {
      id: randomUUID(),
      timestamp: new Date().toISOString(),
      action,
      target: dropUndefined(target),
      ...(request ? { request } : {}),
    };
    await this.store.enqueue(hooks.map((w) => delivery(w, event.id, action, event)));
    this.wake();
  }

  /** Drops a deleted registry's webhooks and their logs. */
  async forgetRegistry(registry: string): Promise<void> {
    await this.store.deleteRegistryWebhooks(registry);
    this.changed(registry);
  }

  private async webhooksOf(registry: string): Promise<WebhookRecord[]> {
    const now = Date.now();
    const cached = this.lists.get(registry);
    if (cached && cached.until > now) return cached.hooks;
    const generation = this.generation;
    const hooks = await this.store.listWebhooks(registry);
    if (generation === this.generation) {
      if (this.lists.size >= 10_000) this.lists.clear();
      this.lists.set(registry, { hooks, until: now + this.listTtlMs });
    }
    return hooks;
  }

  private changed(registry: string): void {
    this.changes.publish({ kind: 'webhook', registry });
  }
}

/**
 * ACR's scope: empty matches everything; `repo:tag` one tag; `repo:*` every tag of a repository; a
 * bare `repo` means `repo:latest`. Events without a repository (networkDenied) match any scope.
 */
export function inScope(scope: string, target: EventTarget): boolean {
  if (scope === '' || target.repository === undefined) return true;
  const colon = scope.lastIndexOf(':');
  const repository = colon === -1 ? scope : scope.slice(0, colon);
  const tag = colon === -1 ? 'latest' : scope.slice(colon + 1);
  if (!globMatch(repository, target.repository)) return false;
  return tag === '*' || target.tag === undefined || globMatch(tag, target.tag);
}

function globMatch(pattern: string, value: string): boolean {
  if (!pattern.includes('*')) return pattern === value;
  const parts = pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`).test(value);
}

function apply(webhook: WebhookRecord, input: WebhookInput): void {
  if (input.serviceUri !== undefined) {
    let uri: URL;
    try {
      uri = new URL(input.serviceUri);
    } catch {
      uri = new URL('invalid:');
    }
    if (uri.protocol !== 'http:' && uri.protocol !== 'https:') {
      throw new ManagementError('InvalidParameter', 'serviceUri must be an http or https URL.', {
        target: 'serviceUri',
      });
    }
    webhook.serviceUri = uri.href;
  }
  if (input.actions !== undefined) {
    const unknown = input.actions.filter((a) => !(WEBHOOK_ACTIONS as readonly string[]).includes(a));
    if (input.actions.length === 0 || unknown.length > 0) {
      throw new ManagementError(
        'InvalidParameter',
        `actions must be some of: ${WEBHOOK_ACTIONS.join(', ')}${unknown.length ? ` (not ${unknown.join(', ')})` : ''}.`,
        { target: 'actions' },
      );
    }
    webhook.actions = [...new Set(input.actions)] as WebhookAction[];
  }
  if (input.scope !== undefined) {
    if (input.scope.length > 512)
      throw new ManagementError('InvalidParameter', 'scope is too long.', { target: 'scope' });
    webhook.scope = input.scope;
  }
  if (input.customHeaders !== undefined) {
    for (const [name, value] of Object.entries(input.customHeaders)) {
      if (!HEADER_NAME_RE.test(name) || typeof value !== 'string' || /[\r\n]/.test(value)) {
        throw new ManagementError(
          'InvalidParameter',
          `customHeaders: '${name.slice(0, 100)}' is not a valid header.`,
          {
            target: 'customHeaders',
          },
        );
      }
    }
    webhook.customHeaders = { ...input.customHeaders };
  }
  if (input.status !== undefined) {
    if (input.status !== 'enabled' && input.status !== 'disabled') {
      throw new ManagementError('InvalidParameter', 'status must be enabled or disabled.', {
        target: 'status',
      });
    }
    webhook.status = input.status;
  }
}

function delivery(webhook: WebhookRecord, eventId: string, action: string, event: object): DeliveryRecord {
  const now = new Date();
  return {
    id: randomUUID(),
    registry: webhook.registry,
    webhook: webhook.name,
    eventId,
    action,
    payload: JSON.stringify(event),
    status: 'pending',
    attempts: 0,
    nextAttemptAt: now.getTime(),
    lastStatusCode: undefined,
    lastError: undefined,
    createdAt: now,
    updatedAt: now,
  };
}

function dropUndefined(target: EventTarget): EventTarget {
  return Object.fromEntries(Object.entries(target).filter(([, v]) => v !== undefined));
}
