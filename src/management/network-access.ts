import type { Logger } from 'pino';
import {
  compileIpRules,
  compileNetworkPolicy,
  decideAccess,
  parseClientAddress,
  type AccessDecision,
  type ClientAddress,
  type NetworkAction,
  type NetworkIdentity,
  type PrivateEndpointConnectionState,
  type RegistryNetworkPolicy,
  type RuleInfo,
} from '../network/index.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { DenialAuditStore, DenialRecord, IpSetStore, MetadataStore } from '../store/types.js';
import { DenialLog, type DenialLogOptions } from './denial-log.js';
import { settingsOf } from './registry-model.js';

/** How a request reached a registry: the public listeners, or one private endpoint's listener. */
export type EntryPoint = { kind: 'public' } | { kind: 'private'; connectionName: string };

interface CompiledRegistry {
  policy: RegistryNetworkPolicy;
  connections: Map<string, PrivateEndpointConnectionState>;
}

/** setTimeout's ceiling (~24.8 days); a later expiry is re-armed when this one fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The network guard's state: each registry's rules compiled once into a matcher, dropped the moment
 * the store reports a change (so the very next request sees new rules), and the denial log.
 */
export class NetworkAccessService {
  private readonly compiled = new Map<string, CompiledRegistry>();
  /** The last policy compiled per registry, kept across changes so appended rules compile alone. */
  private readonly lastPolicy = new Map<string, RegistryNetworkPolicy>();
  /** One timer per registry, at its next rule expiry. */
  private readonly expiryTimers = new Map<string, NodeJS.Timeout>();
  /** Bumped on every change of a registry, so a load that raced a change does not cache old rules. */
  private readonly generations = new Map<string, number>();
  private readonly listeners = new Set<(registry: string) => void>();
  private unsubscribe: (() => void) | undefined;
  /** The denial log (aggregated counts, bounded), exposed for maintenance and tests. */
  readonly denials: DenialLog;

  constructor(
    private readonly meta: MetadataStore,
    /** The denial log's store, which also holds the named IP sets rules refer to. */
    readonly store: DenialAuditStore & IpSetStore,
    log: Logger,
    /** The node's change feed: registry and IP set changes made on any node. */
    private readonly changes: Pick<ChangeFeed, 'subscribe'>,
    denialLog?: DenialLogOptions,
  ) {
    this.denials = new DenialLog(store, log, denialLog);
  }

  /** An IP set changed: every registry is compiled again (those naming it change at once). */
  ipSetChanged(): void {
    for (const registry of new Set([...this.compiled.keys(), ...this.lastPolicy.keys()]))
      this.invalidate(registry);
  }

  start(): void {
    this.unsubscribe = this.changes.subscribe((event) => {
      if (event.kind === 'registry') this.invalidate(event.registry);
      else if (event.kind === 'resync' || event.kind === 'ipSet') this.ipSetChanged();
    });
    this.denials.start();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    for (const timer of this.expiryTimers.values()) clearTimeout(timer);
    this.expiryTimers.clear();
    await this.denials.stop();
  }

  /** Drops a registry's compiled policy and tells listeners (the guard re-checks requests in flight). */
  private invalidate(registry: string): void {
    this.compiled.delete(registry);
    this.generations.set(registry, (this.generations.get(registry) ?? 0) + 1);
    for (const listener of this.listeners) listener(registry);
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
    identity?: NetworkIdentity,
    action: NetworkAction = 'pull',
  ): Promise<AccessDecision> {
    let compiled = this.compiled.get(registry);
    // A rule stops matching at its instant even if its timer has not fired yet (one comparison).
    if (!compiled || Date.now() >= compiled.policy.validUntil) compiled = await this.load(registry);
    if (entry.kind === 'private') {
      const state = compiled.connections.get(entry.connectionName) ?? 'Disconnected';
      return decideAccess(
        compiled.policy,
        { kind: 'private', connectionName: entry.connectionName, connectionState: state },
        client,
        identity,
        action,
      );
    }
    return decideAccess(compiled.policy, entry, client, identity, action);
  }

  /** `checkNetworkAccess`: how a public request from `ip` would be decided, and the expired rules. */
  async check(
    registry: string,
    ip: string,
    action: NetworkAction = 'pull',
    identity?: NetworkIdentity,
  ): Promise<(AccessDecision & { ip: string; expiredRules: RuleInfo[] }) | undefined> {
    const client = parseClientAddress(ip);
    if (!client) return undefined;
    const decision = await this.decide(registry, { kind: 'public' }, client, identity, action);
    const policy = this.compiled.get(registry)?.policy;
    // Expired rules that would have matched are named, so "why am I refused now?" has an answer. A rule
    // naming an IP set (`ipSet:<name>`) is matched against the set's ranges, not its label.
    const expiredRules: RuleInfo[] = [];
    for (const rule of policy?.expired ?? []) {
      const ranges = rule.ipSet ? ((await this.store.getIpSet(rule.ipSet))?.ranges ?? []) : [rule.value];
      if (compileIpRules(ranges).matches(client)) expiredRules.push(rule);
    }
    return { ip: client.text, ...decision, expiredRules };
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
    const previous = this.lastPolicy.get(registry);
    const ipSets = new Map<string, readonly string[]>();
    for (const rule of settings?.networkRuleSet.ipRules ?? []) {
      if (rule.ipSet !== undefined && !ipSets.has(rule.ipSet))
        ipSets.set(rule.ipSet, (await this.store.getIpSet(rule.ipSet))?.ranges ?? []);
    }
    const compiled: CompiledRegistry = {
      policy: compileNetworkPolicy(
        {
          publicNetworkAccess: settings?.publicNetworkAccess ?? 'Enabled',
          defaultAction: settings?.networkRuleSet.defaultAction ?? 'Allow',
          ipRules: settings?.networkRuleSet.ipRules ?? [],
          networkRuleBypassOptions: settings?.networkRuleBypassOptions ?? 'None',
          enforcement: settings?.networkRuleSet.enforcement ?? 'Enforced',
        },
        { ...(previous ? { previous } : {}), ipSets },
      ),
      connections: new Map((settings?.privateEndpointConnections ?? []).map((pe) => [pe.name, pe.status])),
    };
    if (record && (this.generations.get(registry) ?? 0) === generation) {
      this.compiled.set(registry, compiled);
      this.lastPolicy.set(registry, compiled.policy);
      this.scheduleExpiry(registry, compiled.policy.validUntil);
    }
    if (!record) this.lastPolicy.delete(registry);
    return compiled;
  }

  /** At the registry's next rule expiry, its policy is dropped and requests in flight re-checked. */
  private scheduleExpiry(registry: string, at: number): void {
    clearTimeout(this.expiryTimers.get(registry));
    this.expiryTimers.delete(registry);
    if (at === Infinity) return;
    const wait = Math.max(0, at - Date.now());
    const timer = setTimeout(
      () => {
        this.expiryTimers.delete(registry);
        // A failed reload leaves the policy to be loaded by the next request instead.
        if (wait >= MAX_TIMER_MS) this.load(registry).catch(() => this.invalidate(registry));
        else this.invalidate(registry);
      },
      Math.min(wait, MAX_TIMER_MS),
    );
    timer.unref();
    this.expiryTimers.set(registry, timer);
  }
}
