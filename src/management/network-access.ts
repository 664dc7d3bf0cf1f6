import type { Logger } from 'pino';
import {
  compileNetworkPolicy,
  decideAccess,
  parseClientAddress,
  type AccessDecision,
  type ClientAddress,
  type PrivateEndpointConnectionState,
  type RegistryNetworkPolicy,
} from '../network/index.js';
import type { DenialAuditStore, DenialRecord, MetadataStore } from '../store/types.js';
import { settingsOf } from './registry-model.js';

/** How a request reached a registry: the public listeners, or one private endpoint's listener. */
export type EntryPoint = { kind: 'public' } | { kind: 'private'; connectionName: string };

interface CompiledRegistry {
  policy: RegistryNetworkPolicy;
  connections: Map<string, PrivateEndpointConnectionState>;
}

/** Pending denial records are written in batches; past this many the newest are counted, not kept. */
const MAX_PENDING_DENIALS = 10_000;
const FLUSH_INTERVAL_MS = 1_000;

/**
 * The network guard's state: each registry's rules compiled once into a matcher, dropped the moment
 * the store reports a change (so the very next request sees new rules), and the denial log.
 */
export class NetworkAccessService {
  private readonly compiled = new Map<string, CompiledRegistry>();
  /** Bumped on every change of a registry, so a load that raced a change does not cache old rules. */
  private readonly generations = new Map<string, number>();
  private readonly listeners = new Set<(registry: string) => void>();
  private pending: DenialRecord[] = [];
  private dropped = 0;
  private unsubscribe: (() => void) | undefined;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly meta: MetadataStore,
    private readonly audit: DenialAuditStore,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.unsubscribe = this.meta.onChange((event) => {
      this.compiled.delete(event.registry);
      this.generations.set(event.registry, (this.generations.get(event.registry) ?? 0) + 1);
      for (const listener of this.listeners) listener(event.registry);
    });
    this.flushTimer = setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    this.flushTimer.unref();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    clearInterval(this.flushTimer);
    await this.flush();
  }

  /** Calls `listener` whenever a registry's settings change (to re-check requests in flight). */
  onPolicyChange(listener: (registry: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Decides a request; a registry that does not exist is decided with the defaults (allow). */
  async decide(
    registry: string,
    entry: EntryPoint,
    client: ClientAddress,
    identity?: { trustedService: boolean },
  ): Promise<AccessDecision> {
    const compiled = this.compiled.get(registry) ?? (await this.load(registry));
    if (entry.kind === 'private') {
      const state = compiled.connections.get(entry.connectionName) ?? 'Disconnected';
      return decideAccess(
        compiled.policy,
        { kind: 'private', connectionName: entry.connectionName, connectionState: state },
        client,
        identity,
      );
    }
    return decideAccess(compiled.policy, entry, client, identity);
  }

  /** `checkNetworkAccess`: how a public request from `ip` would be decided. */
  async check(registry: string, ip: string): Promise<(AccessDecision & { ip: string }) | undefined> {
    const client = parseClientAddress(ip);
    if (!client) return undefined;
    return { ip: client.text, ...(await this.decide(registry, { kind: 'public' }, client)) };
  }

  /** Queues a denial for the log. */
  recordDenial(record: DenialRecord): void {
    if (this.pending.length >= MAX_PENDING_DENIALS) {
      this.dropped++;
      return;
    }
    this.pending.push(record);
  }

  /** Writes queued denials now (also used by tests and queries, so reads see every denial). */
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      await this.audit.appendDenials(batch);
    } catch (err) {
      this.log.error({ err, count: batch.length }, 'denial log write failed');
    }
    if (this.dropped > 0) {
      this.log.warn({ dropped: this.dropped }, 'denial log overflow: records dropped');
      this.dropped = 0;
    }
  }

  private async load(registry: string): Promise<CompiledRegistry> {
    const generation = this.generations.get(registry) ?? 0;
    const record = await this.meta.getRegistry(registry);
    const settings = record ? settingsOf(record) : undefined;
    const compiled: CompiledRegistry = {
      policy: compileNetworkPolicy({
        publicNetworkAccess: settings?.publicNetworkAccess ?? 'Enabled',
        defaultAction: settings?.networkRuleSet.defaultAction ?? 'Allow',
        ipRules: settings?.networkRuleSet.ipRules ?? [],
        networkRuleBypassOptions: settings?.networkRuleBypassOptions ?? 'None',
      }),
      connections: new Map((settings?.privateEndpointConnections ?? []).map((pe) => [pe.name, pe.status])),
    };
    if (record && (this.generations.get(registry) ?? 0) === generation) this.compiled.set(registry, compiled);
    return compiled;
  }
}
