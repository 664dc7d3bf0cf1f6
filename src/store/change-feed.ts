import { EventEmitter } from 'node:events';

/**
 * What changed, for everything that caches. One node's write publishes an event; every node's caches
 * (the guard's compiled policies, the registry directory, credentials, the manifest cache, private
 * endpoint listeners) drop what the event names.
 */
export type ChangeEvent =
  /** A registry record (its settings, network rules, private endpoint connections) was written. */
  | { kind: 'registry'; registry: string; change?: 'created' | 'updated' | 'deleted' }
  /** A named IP set was created, replaced or deleted. */
  | { kind: 'ipSet'; name: string }
  /** A repository-scoped token was created, changed (passwords, status) or deleted. */
  | { kind: 'token'; registry: string; name: string }
  /** A scope map was created, changed or deleted. */
  | { kind: 'scopeMap'; registry: string; name: string }
  /** A management identity (user or API key) was created, changed or deleted. */
  | { kind: 'identity'; id: string }
  /** A principal's role assignments (management or data-plane) changed. */
  | { kind: 'roles'; principalId: string }
  /** A registry's webhooks were created, changed or deleted. */
  | { kind: 'webhook'; registry: string }
  /** A token-signing key was added. */
  | { kind: 'signingKey'; kid: string }
  /**
   * What `resolveTag`/`getManifest`/`listTags` answer changed in a repository: a manifest put (digest and
   * tag) or deleted (digest), a tag deleted (tag), or the whole repository deleted (neither).
   */
  | { kind: 'manifest'; registry: string; repository: string; digest?: string; tag?: string }
  /** Events may have been missed (a reconnect, or the periodic safety net): drop every cached thing. */
  | { kind: 'resync' };

/** The kinds of change event. */
export type ChangeKind = ChangeEvent['kind'];

/**
 * Delivers change events to this node's subscribers and, in scale-out, to every other node.
 * `publish` delivers to local subscribers synchronously, before it returns, so the very next request on
 * this node already sees the change; other nodes get it when the cross-node transport delivers it.
 */
export interface ChangeFeed {
  publish(event: ChangeEvent): void;
  /** Subscribes to every event; returns an unsubscribe function. */
  subscribe(listener: (event: ChangeEvent) => void): () => void;
  close(): Promise<void>;
}

/** The embedded default: one process, so delivery is an in-process event. */
export class LocalChangeFeed implements ChangeFeed {
  private readonly events = new EventEmitter();

  constructor() {
    // Every cache of every listener subscribes; the default warning at 10 would be noise, not a leak.
    this.events.setMaxListeners(0);
  }

  publish(event: ChangeEvent): void {
    this.events.emit('change', event);
  }

  subscribe(listener: (event: ChangeEvent) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  async close(): Promise<void> {
    this.events.removeAllListeners();
  }
}
