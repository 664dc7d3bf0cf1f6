import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { WebhookService } from '../management/webhooks.js';
import type { RequestObserver } from './observe.js';

/**
 * Turns finished data-plane requests into webhook events: a manifest PUT that was stored is `push`, a
 * manifest or tag DELETE that succeeded is `delete`. Queuing is a quick local write; delivery happens
 * elsewhere (src/management/webhook-delivery.ts).
 */
export function webhookObserver(webhooks: WebhookService, log: Logger): RequestObserver {
  return (o) => {
    if (o.route !== 'manifest' || o.repository === undefined || o.reference === undefined) return;
    const byDigest = o.reference.includes(':');
    const request = { id: o.id, host: o.host, method: o.method, useragent: o.userAgent };
    let published: Promise<void> | undefined;
    if (o.method === 'PUT' && o.status === 201) {
      published = webhooks.publish(
        o.registry,
        'push',
        {
          mediaType: o.contentType,
          size: o.contentLength,
          digest: o.digest,
          length: o.contentLength,
          repository: o.repository,
          tag: byDigest ? undefined : o.reference,
        },
        request,
      );
    } else if (o.method === 'DELETE' && o.status === 202) {
      published = webhooks.publish(
        o.registry,
        'delete',
        byDigest
          ? { digest: o.reference, repository: o.repository }
          : { repository: o.repository, tag: o.reference },
        request,
      );
    }
    published?.catch((err: unknown) => log.error({ err, registry: o.registry }, 'webhook event not queued'));
  };
}

const REPOSITORY_ROUTE = '/api/registries/:name/repositories/:repository';
const TAG_ROUTE = '/api/registries/:name/repositories/:repository/tags/:tag';

/**
 * `delete` events for deletes through the management API (`berth repository delete|untag`), as ACR
 * sends them for `az acr repository delete`: the repository, or the repository and tag.
 */
export function observeManagementDeletes(app: FastifyInstance, webhooks: WebhookService, log: Logger): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url;
    if (request.method !== 'DELETE' || reply.statusCode !== 204) return;
    if (route !== REPOSITORY_ROUTE && route !== TAG_ROUTE) return;
    const params = request.params as { name: string; repository: string; tag?: string };
    const request_ = {
      id: String(request.id),
      host: request.headers.host ?? '',
      method: request.method,
      useragent: request.headers['user-agent'] ?? '',
    };
    await webhooks
      .publish(
        params.name.toLowerCase(),
        'delete',
        { repository: params.repository, ...(params.tag !== undefined ? { tag: params.tag } : {}) },
        request_,
      )
      .catch((err: unknown) => log.error({ err }, 'webhook event not queued'));
  });
}

/**
 * Berth's `networkDenied` action, aggregated: refused requests are counted per registry and reason,
 * and at most one event per registry leaves per window, carrying the counts (and how many distinct
 * clients) of that window.
 */
export class DenialEvents {
  private readonly pending = new Map<
    string,
    { counts: Map<string, number>; clients: Set<string>; since: Date }
  >();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly webhooks: WebhookService,
    private readonly windowMs: number,
    private readonly log: Logger,
  ) {}

  /** The observer that counts refused requests. */
  observer(): RequestObserver {
    return (o) => {
      if (!o.denialReason) return;
      let entry = this.pending.get(o.registry);
      if (!entry) {
        entry = { counts: new Map(), clients: new Set(), since: new Date() };
        this.pending.set(o.registry, entry);
      }
      entry.counts.set(o.denialReason, (entry.counts.get(o.denialReason) ?? 0) + 1);
      // Bounded: distinct clients are counted up to a cap, never listed.
      if (entry.clients.size < 10_000 && o.clientIp) entry.clients.add(o.clientIp);
    };
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.windowMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }

  /** Publishes one event per registry with refusals since the last flush. */
  async flush(): Promise<void> {
    const batches = [...this.pending];
    this.pending.clear();
    for (const [registry, entry] of batches) {
      await this.webhooks
        .publish(registry, 'networkDenied', {
          registry,
          since: entry.since.toISOString(),
          until: new Date().toISOString(),
          counts: Object.fromEntries(entry.counts),
          total: [...entry.counts.values()].reduce((a, b) => a + b, 0),
          distinctClients: entry.clients.size,
        })
        .catch((err: unknown) => this.log.error({ err, registry }, 'webhook event not queued'));
    }
  }
}
