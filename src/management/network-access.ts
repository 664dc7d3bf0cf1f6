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
import { DenialLog, type DenialLogOptions } from './denial-log.js';
import { settingsOf } from './registry-model.js';

/** How a request reached a registry: the public listeners, or one private endpoint's listener. */
export type EntryPoint = { kind: 'public' } | { kind: 'private'; connectionName: string };

interface CompiledRegistry {
  policy: RegistryNetworkPolicy;
  connections: Map<string, PrivateEndpointConnectionState>;
}

/**
 * The network guard's state: each registry's rules compiled once into a matcher, dropped the moment
 * the store reports a change (so the very next request sees new rules), and the denial log.
 */
export class NetworkAccessService {
  private readonly compiled = new Map<string, CompiledRegistry>();
  /** Bumped on every change of a registry, so a load that raced a change does not cache old rules. */
  private readonly generations = new Map<string, number>();
  private readonly listeners = new Set<(registry: string) => void>();
  private unsubscribe: (() => void) | undefined;
  /** The denial log (aggregated counts, bounded), exposed for maintenance and tests. */
  readonly denials: DenialLog;

  constructor(
    private readonly meta: MetadataStore,
    audit: DenialAuditStore,
    log: Logger,
    denialLog?: DenialLogOptions,
  ) {
    this.denials = new DenialLog(audit, log, denialLog);
  }

  start(): void {
    this.unsubscribe = this.meta.onChange((event) => {
      this.compiled.delete(event.registry);
      this.generations.set(event.registry, (this.generations.get(event.registry) ?? 0) + 1);
      for (const listener of this.listeners) listener(event.registry);
    });
    this.denials.start();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.denials.stop();
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

  /** Counts a denial in the denial log. */
  recordDenial(record: DenialRecord): void {
    this.denials.record(record);
  }

  /** Writes pending denial counts now (queries call it, so reads see every denial). */
  flush(): Promise<void> {
    return this.denials.flush();
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
