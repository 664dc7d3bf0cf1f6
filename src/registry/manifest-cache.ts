import type { ChangeEvent, ManifestRecord, MetadataStore } from '../store/types.js';

/** The two metadata reads a manifest GET/HEAD makes, which the cache answers from memory when warm. */
export type ManifestReads = Pick<MetadataStore, 'resolveTag' | 'getManifest'>;

/** Bytes an entry costs besides its manifest's content: keys, the record object, the map slots. */
const ENTRY_OVERHEAD = 256;
/** A manifest larger than this share of the budget is served but not kept: it would evict too much. */
const LARGEST_SHARE = 8;

interface Entry {
  registry: string;
  repository: string;
  bytes: number;
  /** A tag's digest, or a digest's manifest. */
  value: string | ManifestRecord;
  /** Read since it was last (re)inserted: eviction gives it a second chance instead. */
  used: boolean;
}

/** A read in flight, marked stale when an invalidation of its repository arrives before it returns. */
interface Load {
  registry: string;
  repository: string;
  stale: boolean;
}

/**
 * An in-memory cache of hot manifests (digest → record) and tags (tag → digest) in front of the
 * metadata store, so a warm manifest GET or HEAD touches neither disk nor database. Bounded in bytes
 * (what was not read lately goes first). Kept true by the store's change events: a manifest put, deleted or
 * untagged, a repository or registry deleted, or a resync (events may have been missed) drop what they
 * name. In scale-out those events come from other nodes through the change feed, so a tag moved on
 * another node is seen here as soon as its event arrives (the feed's delay); on this node, at once.
 *
 * A read that raced an invalidation is answered but not kept: it may have read the old value just
 * before the write committed, and keeping it would outlive the event that should have removed it.
 * Unknown tags and digests are never kept (a negative entry would need the same care and buys little:
 * clients ask for what exists).
 */
export class ManifestCache implements ManifestReads {
  /**
   * Insertion order, with a second chance (CLOCK, an approximation of least recently used that costs a
   * hit one assignment instead of a re-insertion): eviction takes the front entry unless it was read
   * since it was inserted, in which case it moves to the back.
   */
  private readonly entries = new Map<string, Entry>();
  /** The keys held per repository (`registry\0repository`), to drop a repository's or registry's entries. */
  private readonly byRepository = new Map<string, Set<string>>();
  private readonly loads = new Set<Load>();
  private bytes = 0;
  private unsubscribe: (() => void) | undefined;
  /** Hits and misses since start, for the benchmark and tests. */
  readonly stats = { hits: 0, misses: 0 };

  constructor(
    private readonly meta: ManifestReads & Pick<MetadataStore, 'onChange'>,
    private readonly maxBytes: number,
  ) {}

  /** Follows the store's change events; call before the first read. */
  start(): void {
    this.unsubscribe = this.meta.onChange((event) => this.invalidate(event));
  }

  stop(): void {
    this.unsubscribe?.();
    this.clear();
  }

  /** Bytes the cache holds now (by its own accounting). */
  get size(): number {
    return this.bytes;
  }

  /** Drops what a change makes stale, and marks reads in flight over it as not to be kept. */
  invalidate(event: ChangeEvent): void {
    if (event.kind === 'resync') {
      for (const load of this.loads) load.stale = true;
      this.clear();
      return;
    }
    if (event.kind === 'registry') {
      if (event.change === 'updated') return;
      for (const load of this.loads) if (load.registry === event.registry) load.stale = true;
      for (const repoKey of [...this.byRepository.keys()])
        if (repoKey.startsWith(`${event.registry}\0`)) this.dropRepository(repoKey);
      return;
    }
    if (event.kind !== 'manifest') return;
    for (const load of this.loads)
      if (load.registry === event.registry && load.repository === event.repository) load.stale = true;
    const repoKey = repositoryKey(event.registry, event.repository);
    if (event.digest === undefined && event.tag === undefined) return this.dropRepository(repoKey);
    if (event.tag !== undefined) this.drop(tagKey(event.registry, event.repository, event.tag));
    if (event.digest !== undefined) {
      this.drop(manifestKey(event.registry, event.repository, event.digest));
      // A deleted manifest takes its tags along, and which tags pointed at it is not worth indexing:
      // the repository's tags are re-read (one small query each) instead.
      const keys = this.byRepository.get(repoKey);
      if (keys && event.tag === undefined)
        for (const key of [...keys]) if (key.startsWith('t\0')) this.drop(key);
    }
  }

  /** The digest a tag points at, from memory when known. */
  async resolveTag(registry: string, repository: string, tag: string): Promise<string | undefined> {
    const key = tagKey(registry, repository, tag);
    const hit = this.hit(key);
    if (hit !== undefined) return hit as string;
    const digest = await this.load(registry, repository, () =>
      this.meta.resolveTag(registry, repository, tag),
    );
    if (digest.value !== undefined && digest.keep)
      this.put(key, {
        registry,
        repository,
        bytes: ENTRY_OVERHEAD + key.length * 2,
        value: digest.value,
        used: false,
      });
    return digest.value;
  }

  /** A manifest by digest, from memory when known. */
  async getManifest(
    registry: string,
    repository: string,
    digest: string,
  ): Promise<ManifestRecord | undefined> {
    const key = manifestKey(registry, repository, digest);
    const hit = this.hit(key);
    if (hit !== undefined) return hit as ManifestRecord;
    const manifest = await this.load(registry, repository, () =>
      this.meta.getManifest(registry, repository, digest),
    );
    const record = manifest.value;
    if (record !== undefined && manifest.keep) {
      const bytes = ENTRY_OVERHEAD + key.length * 2 + record.content.length;
      if (bytes * LARGEST_SHARE <= this.maxBytes)
        this.put(key, { registry, repository, bytes, value: record, used: false });
    }
    return record;
  }

  private hit(key: string): Entry['value'] | undefined {
    const entry = this.entries.get(key);
    if (!entry) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    entry.used = true;
    return entry.value;
  }

  private async load<T>(
    registry: string,
    repository: string,
    read: () => Promise<T>,
  ): Promise<{ value: T; keep: boolean }> {
    const load: Load = { registry, repository, stale: false };
    this.loads.add(load);
    try {
      const value = await read();
      return { value, keep: !load.stale && this.maxBytes > 0 };
    } finally {
      this.loads.delete(load);
    }
  }

  private put(key: string, entry: Entry): void {
    this.drop(key);
    this.entries.set(key, entry);
    this.bytes += entry.bytes;
    const repoKey = repositoryKey(entry.registry, entry.repository);
    let keys = this.byRepository.get(repoKey);
    if (!keys) {
      keys = new Set();
      this.byRepository.set(repoKey, keys);
    }
    keys.add(key);
    // Bounded: each entry gets one second chance per pass, so two passes evict whatever must go.
    let budget = 2 * this.entries.size + 1;
    while (this.bytes > this.maxBytes && budget-- > 0) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, Entry];
      if (oldest.used) {
        oldest.used = false;
        this.entries.delete(oldestKey);
        this.entries.set(oldestKey, oldest);
      } else {
        this.drop(oldestKey);
      }
    }
  }

  private drop(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
    const repoKey = repositoryKey(entry.registry, entry.repository);
    const keys = this.byRepository.get(repoKey);
    keys?.delete(key);
    if (keys?.size === 0) this.byRepository.delete(repoKey);
  }

  private dropRepository(repoKey: string): void {
    for (const key of [...(this.byRepository.get(repoKey) ?? [])]) this.drop(key);
  }

  private clear(): void {
    this.entries.clear();
    this.byRepository.clear();
    this.bytes = 0;
  }
}

// NUL cannot occur in registry, repository, tag or digest names, so these keys cannot collide.
function repositoryKey(registry: string, repository: string): string {
  return `${registry}\0${repository}`;
}

function tagKey(registry: string, repository: string, tag: string): string {
  return `t\0${registry}\0${repository}\0${tag}`;
}

function manifestKey(registry: string, repository: string, digest: string): string {
  return `m\0${registry}\0${repository}\0${digest}`;
}
