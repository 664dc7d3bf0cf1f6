import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { DeliveryRecord, WebhookStore } from '../store/webhook-types.js';

/** How deliveries are attempted. */
export interface DeliveryOptions {
  /** First retry after this long; each further retry waits twice as long. */
  retryBaseMs: number;
  /** Attempts before a delivery is given up as failed. */
  maxAttempts: number;
  /** A receiver slower than this to answer counts as a failed attempt. */
  timeoutMs: number;
  /** Deliveries in flight at once. */
  concurrency: number;
  /** How often the queue is polled when nothing wakes the dispatcher. */
  pollMs: number;
}

export const DEFAULT_DELIVERY_OPTIONS: DeliveryOptions = {
  retryBaseMs: 1000,
  maxAttempts: 6,
  timeoutMs: 10_000,
  concurrency: 8,
  pollMs: 1000,
};

/** The header carrying `sha256=<hex HMAC-SHA256 of the body under the webhook's secret>`. */
export const SIGNATURE_HEADER = 'X-Berth-Signature-256';

/** Result of one attempt, for metrics. */
export type AttemptResult = 'delivered' | 'retrying' | 'failed';

/**
 * Sends queued webhook deliveries, off every request path: a slow or dead receiver costs a slot of
 * this dispatcher, never a push. Deliveries are claimed in the store before they are sent, so one that
 * is in flight when Berth stops is sent again after the restart (at least once, as ACR's are).
 */
export class WebhookDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private polling: Promise<void> | undefined;
  private stopped = false;
  private readonly sends = new Set<Promise<void>>();

  constructor(
    private readonly store: WebhookStore,
    private readonly secretOf: (
      registry: string,
      webhook: string,
    ) => Promise<{ serviceUri: string; secret: string; customHeaders: Record<string, string> } | undefined>,
    private readonly log: Logger,
    private readonly options: DeliveryOptions = DEFAULT_DELIVERY_OPTIONS,
    private readonly onAttempt: (result: AttemptResult) => void = () => undefined,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.wake(), this.options.pollMs);
    this.timer.unref();
    this.wake();
  }

  /** Looks at the queue now (called when events are queued). */
  wake(): void {
    if (this.stopped || this.polling) return;
    this.polling = this.poll()
      .catch((err: unknown) => this.log.error({ err }, 'webhook queue poll failed'))
      .finally(() => (this.polling = undefined));
  }

  /** Stops polling and waits for the deliveries in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.polling;
    await Promise.allSettled([...this.sends]);
  }

  private async poll(): Promise<void> {
    // Bounded: at most this many claims per wake-up; the timer brings the next round.
    for (let round = 0; round < 100 && !this.stopped; round++) {
      const free = this.options.concurrency - this.inFlight;
      if (free <= 0) return;
      const due = await this.store.claimDue(Date.now(), free, this.options.timeoutMs * 2);
      for (const delivery of due) {
        this.inFlight++;
        const send = this.attempt(delivery)
          // A store failure while recording the attempt: the claim lapses and the delivery is retried.
          .catch((err: unknown) => this.log.error({ err, delivery: delivery.id }, 'webhook delivery failed'))
          .finally(() => {
            this.inFlight--;
            this.sends.delete(send);
            this.wake();
          });
        this.sends.add(send);
      }
      if (due.length < free) return;
    }
  }

  private async attempt(delivery: DeliveryRecord): Promise<void> {
    const hook = await this.secretOf(delivery.registry, delivery.webhook);
    if (!hook) return; // deleted meanwhile, with its log
    let statusCode: number | undefined;
    let error: string | undefined;
    try {
      const response = await fetch(hook.serviceUri, {
        method: 'POST',
        headers: {
          ...hook.customHeaders,
          'Content-Type': 'application/json',
          'User-Agent': 'berth-webhook/1',
          [SIGNATURE_HEADER]: `sha256=${createHmac('sha256', hook.secret).update(delivery.payload).digest('hex')}`,
          'X-Berth-Event-Id': delivery.eventId,
        },
        body: delivery.payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      statusCode = response.status;
      await response.body?.cancel();
      if (statusCode < 200 || statusCode >= 300) error = `receiver answered ${statusCode}`;
    } catch (failure) {
      error = (failure as Error).message.slice(0, 200);
    }
    const attempts = delivery.attempts + 1;
    const delivered = error === undefined;
    const giveUp = !delivered && attempts >= this.options.maxAttempts;
    const result: AttemptResult = delivered ? 'delivered' : giveUp ? 'failed' : 'retrying';
    await this.store.recordAttempt(delivery.id, {
      status: delivered ? 'delivered' : giveUp ? 'failed' : 'pending',
      nextAttemptAt: Date.now() + this.options.retryBaseMs * 2 ** (attempts - 1),
      statusCode,
      error,
    });
    this.onAttempt(result);
    if (!delivered)
      this.log.warn(
        { registry: delivery.registry, webhook: delivery.webhook, attempts, statusCode, error },
        'webhook delivery failed',
      );
  }
}
