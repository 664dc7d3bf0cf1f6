import type { RegistryAuthSettings } from '../auth/credentials.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { MetadataStore } from '../store/types.js';
import type { RegistryManager } from './registries.js';
import { settingsOf } from './registry-model.js';

/**
 * Each registry's sign-in settings (login server, admin user, anonymous pull), read once and kept until
 * the store reports a change of that registry, so a request does not pay for a record read and two
 * decryptions.
 */
export class RegistryAuthSettingsCache {
  private readonly cache = new Map<string, RegistryAuthSettings | undefined>();
  private readonly generations = new Map<string, number>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly meta: MetadataStore,
    private readonly registries: RegistryManager,
    private readonly domain: string,
    private readonly changes: Pick<ChangeFeed, 'subscribe'>,
  ) {}

  start(): void {
    this.unsubscribe = this.changes.subscribe((event) => {
      if (event.kind === 'resync') {
        for (const registry of this.cache.keys())
          this.generations.set(registry, (this.generations.get(registry) ?? 0) + 1);
        this.cache.clear();
        return;
      }
      if (event.kind !== 'registry') return;
      this.cache.delete(event.registry);
      this.generations.set(event.registry, (this.generations.get(event.registry) ?? 0) + 1);
    });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  /** The settings of a registry, undefined when it does not exist. */
  readonly get = async (registry: string): Promise<RegistryAuthSettings | undefined> => {
    if (this.cache.has(registry)) return this.cache.get(registry);
    const generation = this.generations.get(registry) ?? 0;
    const record = await this.meta.getRegistry(registry);
    let settings: RegistryAuthSettings | undefined;
    if (record) {
      const stored = settingsOf(record);
      settings = {
        loginServer: `${record.name}.${this.domain}`,
        adminUserEnabled: stored.adminUserEnabled,
        adminPasswords: stored.adminUserEnabled ? this.registries.adminPasswords(stored) : [],
        anonymousPull: stored.anonymousPullEnabled && stored.sku !== 'Basic',
      };
    }
    // A change that raced this read must not leave the old settings cached.
    if ((this.generations.get(registry) ?? 0) === generation && this.cache.size < 10_000)
      this.cache.set(registry, settings);
    return settings;
  };
}
