import type { ChangeFeed } from '../store/change-feed.js';
import type { MetadataStore } from '../store/types.js';

/**
 * Maps a request's Host to the registry it addresses: `<name>.<domain>[:port]` names a registry;
 * any other host reaches the default registry, so `localhost:5000` just works. Registry names are
 * cached and refreshed from the store's change feed, keeping the lookup off the database.
 */
export class RegistryDirectory {
  private names = new Set<string>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly meta: MetadataStore,
    private readonly domain: string,
    readonly defaultRegistry: string,
    private readonly changes: Pick<ChangeFeed, 'subscribe'>,
  ) {}

  /** Loads the registry names and follows changes. */
  async start(): Promise<void> {
    // An update cannot change which names exist; re-reading every registry on each rule edit would
    // cost a parse of all their settings.
    this.unsubscribe = this.changes.subscribe((event) => {
      if (event.kind === 'resync' || (event.kind === 'registry' && event.change !== 'updated'))
        void this.refresh();
    });
    await this.refresh();
  }

  stop(): void {
    this.unsubscribe?.();
  }

  /** The registry a Host header addresses. */
  resolve(host: string | undefined): string {
    if (!host) return this.defaultRegistry;
    // An FQDN may end in the root's dot (`<name>.<domain>.`); it names the same host (RFC 1034 §3.1).
    const hostname = stripPort(host).toLowerCase().replace(/\.$/, '');
    const suffix = `.${this.domain}`;
    if (hostname.endsWith(suffix)) {
      const name = hostname.slice(0, -suffix.length);
      if (this.names.has(name)) return name;
    }
    return this.defaultRegistry;
  }

  /** The login server of a registry: `<name>.<domain>`. */
  loginServer(name: string): string {
    return `${name}.${this.domain}`;
  }

  private async refresh(): Promise<void> {
    const registries = await this.meta.listRegistries();
    this.names = new Set(registries.map((r) => r.name.toLowerCase()));
  }
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}
