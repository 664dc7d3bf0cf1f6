import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { parseListen } from '../config.js';
import type { EndpointListeners } from '../management/private-endpoints.js';
import { settingsOf } from '../management/registry-model.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { MetadataStore } from '../store/types.js';

/**
 * Bind errors meaning "this address is not this node's to serve": the address is on another machine
 * (EADDRNOTAVAIL), or another process on this machine, such as a second node, holds it (EADDRINUSE).
 */
const NOT_THIS_NODE = new Set(['EADDRNOTAVAIL', 'EADDRINUSE']);

/**
 * The live set of private endpoint listeners: one data-plane app per connection, bound to the
 * connection's own address, opened when the connection is created and closed when it is deleted.
 * `reconcile` brings the set in line with the store (at start, and after changes made elsewhere).
 *
 * In scale-out every node reconciles, and each opens the listeners whose address it can bind: an
 * address on one of its own interfaces that no other process on the machine holds. A node that cannot
 * bind one skips it quietly and tries again on the next change or resync, so when the node holding it
 * stops, another on the same machine takes it over.
 */
export class PrivateEndpointListeners implements EndpointListeners {
  private readonly apps = new Map<string, { address: string; app: FastifyInstance }>();
  private unsubscribe: (() => void) | undefined;
  private reconciling: Promise<void> = Promise.resolve();

  constructor(
    private readonly meta: MetadataStore,
    private readonly build: (registry: string, connectionName: string) => FastifyInstance,
    private readonly log: Logger,
    private readonly changes: Pick<ChangeFeed, 'subscribe'>,
    /**
     * Scale-out: an address on no interface of this node may be another node's, so creating a
     * connection for it succeeds here and the node that has it opens the listener.
     */
    private readonly addressesOnOtherNodes = false,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = this.changes.subscribe((event) => {
      if (event.kind !== 'registry' && event.kind !== 'resync') return;
      this.reconciling = this.reconciling
        .then(() => this.reconcile())
        .catch((err: unknown) => this.log.error({ err }, 'private endpoint reconcile failed'));
    });
    await this.reconcile();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.reconciling;
    await Promise.allSettled([...this.apps.values()].map(({ app }) => app.close()));
    this.apps.clear();
  }

  async open(registry: string, connectionName: string, address: string): Promise<void> {
    const key = `${registry}/${connectionName}`;
    const existing = this.apps.get(key);
    if (existing?.address === address) return;
    if (existing) await this.close(registry, connectionName);
    const app = this.build(registry, connectionName);
    const { host, port } = parseListen(address);
    try {
      await app.listen({ host, port });
    } catch (error) {
      await app.close();
      if (this.addressesOnOtherNodes && (error as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL') {
        this.log.debug(
          { registry, connection: connectionName, address },
          'private endpoint address on another node',
        );
        return;
      }
      throw error;
    }
    this.apps.set(key, { address, app });
    this.log.info({ registry, connection: connectionName, address }, 'private endpoint listener opened');
  }

  async close(registry: string, connectionName: string): Promise<void> {
    const key = `${registry}/${connectionName}`;
    const entry = this.apps.get(key);
    if (!entry) return;
    this.apps.delete(key);
    // Drop keep-alive connections too: a deleted endpoint must stop serving at once.
    entry.app.server.closeAllConnections?.();
    await entry.app.close();
    this.log.info(
      { registry, connection: connectionName, address: entry.address },
      'private endpoint listener closed',
    );
  }

  /** Opens listeners the store has and this node lacks; closes the ones the store no longer has. */
  async reconcile(): Promise<void> {
    const wanted = new Map<string, { registry: string; name: string; address: string }>();
    for (const record of await this.meta.listRegistries()) {
      for (const pe of settingsOf(record).privateEndpointConnections) {
        wanted.set(`${record.name}/${pe.name}`, {
          registry: record.name,
          name: pe.name,
          address: pe.address,
        });
      }
    }
    for (const key of [...this.apps.keys()]) {
      if (!wanted.has(key)) {
        const [registry, name] = key.split('/') as [string, string];
        await this.close(registry, name);
      }
    }
    for (const { registry, name, address } of wanted.values()) {
      await this.open(registry, name, address).catch((err: unknown) => {
        const code = (err as NodeJS.ErrnoException).code;
        if (code && NOT_THIS_NODE.has(code))
          this.log.debug(
            { registry, connection: name, address, code },
            'private endpoint address not this node',
          );
        else
          this.log.error(
            { err, registry, connection: name, address },
            'private endpoint listener failed to open',
          );
      });
    }
  }
}
