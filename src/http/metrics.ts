import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Berth's Prometheus metrics, one set per running server (tests run several in one process). Labels are
 * bounded: registry names, route kinds, methods, status codes and reasons; never repositories or
 * client addresses.
 */
export class BerthMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'berth_http_requests_total',
    help: 'Data-plane requests, by registry, route kind, method and status code',
    labelNames: ['registry', 'route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'berth_http_request_duration_seconds',
    help: 'Data-plane request latency, by route kind and method',
    labelNames: ['route', 'method'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly received = new Counter({
    name: 'berth_http_received_bytes_total',
    help: 'Bytes received after the request headers (bodies), by registry and route kind',
    labelNames: ['registry', 'route'] as const,
    registers: [this.registry],
  });
  readonly sent = new Counter({
    name: 'berth_http_sent_bytes_total',
    help: 'Bytes sent (headers and bodies), by registry and route kind',
    labelNames: ['registry', 'route'] as const,
    registers: [this.registry],
  });
  readonly denials = new Counter({
    name: 'berth_network_denials_total',
    help: 'Data-plane requests refused by the network rules, by registry and reason',
    labelNames: ['registry', 'reason'] as const,
    registers: [this.registry],
  });
  readonly signIns = new Counter({
    name: 'berth_sign_ins_total',
    help: 'Data-plane sign-ins, by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly gcRuns = new Counter({
    name: 'berth_gc_runs_total',
    help: 'Garbage collection runs (not dry runs), by registry and status',
    labelNames: ['registry', 'status'] as const,
    registers: [this.registry],
  });
  readonly gcBlobs = new Counter({
    name: 'berth_gc_blobs_deleted_total',
    help: 'Blobs garbage collection deleted, by registry',
    labelNames: ['registry'] as const,
    registers: [this.registry],
  });
  readonly gcBytes = new Counter({
    name: 'berth_gc_bytes_reclaimed_total',
    help: 'Bytes garbage collection reclaimed, by registry',
    labelNames: ['registry'] as const,
    registers: [this.registry],
  });
  readonly storeDuration = new Histogram({
    name: 'berth_store_operation_duration_seconds',
    help: 'Store operation latency, by store and operation',
    labelNames: ['store', 'operation'] as const,
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly webhookDeliveries = new Counter({
    name: 'berth_webhook_deliveries_total',
    help: 'Webhook delivery attempts, by result (delivered, failed, retrying)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  constructor(countUploads: () => Promise<number>) {
    // Process metrics, among them event-loop delay (berth_nodejs_eventloop_lag_p99_seconds and kin).
    collectDefaultMetrics({ register: this.registry, prefix: 'berth_' });
    new Gauge({
      name: 'berth_uploads_in_progress',
      help: 'Open blob upload sessions',
      registers: [this.registry],
      async collect() {
        this.set(await countUploads());
      },
    });
  }

  /** The text exposition format for a scrape. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Drops every metric (the registry is per server, so nothing else holds them). */
  close(): void {
    this.registry.clear();
  }
}

/**
 * Wraps a store so every method's latency lands in `berth_store_operation_duration_seconds`. Method
 * names are the operation label (a fixed set per interface).
 */
export function timedStore<T extends object>(store: T, name: string, metrics: BerthMetrics): T {
  // One wrapper per method, made on first use: the hot path then costs a map lookup and a timer.
  const wrapped = new Map<string, unknown>();
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      let wrapper = wrapped.get(property);
      if (!wrapper) {
        const histogram = metrics.storeDuration.labels(name, property);
        wrapper = (...args: unknown[]) => {
          const end = histogram.startTimer();
          const result = (value as (...a: unknown[]) => unknown).apply(target, args);
          if (result instanceof Promise) return result.finally(end);
          end();
          return result;
        };
        wrapped.set(property, wrapper);
      }
      return wrapper;
    },
  });
}
