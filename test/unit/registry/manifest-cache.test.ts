import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { ManifestCache } from '../../../src/registry/manifest-cache.js';
import type { ChangeEvent, ManifestRecord } from '../../../src/store/types.js';

/**
 * A metadata store's manifest reads over a map, counting reads, with a gate that holds a read open until
 * the test lets it go (to put an invalidation between a read and its answer, deterministically).
 */
class FakeStore {
  readonly tags = new Map<string, string>();
  readonly manifests = new Map<string, ManifestRecord>();
  reads = 0;
  private readonly events = new EventEmitter();
  private gate: { opened: Promise<void>; reached: () => void } | undefined;

  /** The next read resolves its value at once but answers only after `release()`; `reached` says it started. */
  holdNextRead(): { reached: Promise<void>; release: () => void } {
    let release!: () => void;
    let reached!: () => void;
    const opened = new Promise<void>((resolve) => (release = resolve));
    const started = new Promise<void>((resolve) => (reached = resolve));
    this.gate = { opened, reached };
    return { reached: started, release };
  }

  emit(event: ChangeEvent): void {
    this.events.emit('change', event);
  }

  onChange(listener: (event: ChangeEvent) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  async resolveTag(registry: string, repository: string, tag: string): Promise<string | undefined> {
    const value = this.tags.get(`${registry}/${repository}:${tag}`);
    await this.pass();
    return value;
  }

  async getManifest(
    registry: string,
    repository: string,
    digest: string,
  ): Promise<ManifestRecord | undefined> {
    const value = this.manifests.get(`${registry}/${repository}@${digest}`);
    await this.pass();
    return value;
  }

  private async pass(): Promise<void> {
    this.reads++;
    const gate = this.gate;
    this.gate = undefined;
    if (!gate) return;
    gate.reached();
    await gate.opened;
  }
}

function record(digest: string, size = 100): ManifestRecord {
  return {
    digest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size,
    content: Buffer.alloc(size),
  };
}

function setup(maxBytes = 1024 * 1024) {
  const store = new FakeStore();
  const cache = new ManifestCache(store, maxBytes);
  cache.start();
  return { store, cache };
}

test('hits are answered from memory; unknown tags and manifests are asked again every time', async () => {
  const { store, cache } = setup();
  store.tags.set('r/app:v1', 'sha256:a');
  store.manifests.set('r/app@sha256:a', record('sha256:a'));
  assert.equal(await cache.resolveTag('r', 'app', 'v1'), 'sha256:a');
  assert.equal((await cache.getManifest('r', 'app', 'sha256:a'))?.digest, 'sha256:a');
  const cold = store.reads;
  for (let i = 0; i < 3; i++) {
    assert.equal(await cache.resolveTag('r', 'app', 'v1'), 'sha256:a');
    assert.equal((await cache.getManifest('r', 'app', 'sha256:a'))?.digest, 'sha256:a');
  }
  assert.equal(store.reads, cold);
  assert.equal(await cache.resolveTag('r', 'app', 'missing'), undefined);
  assert.equal(await cache.resolveTag('r', 'app', 'missing'), undefined);
  assert.equal(await cache.getManifest('r', 'app', 'sha256:none'), undefined);
  assert.equal(await cache.getManifest('r', 'app', 'sha256:none'), undefined);
  assert.equal(store.reads, cold + 4, 'a negative answer was cached');
  // Pushed since: the very next read finds it (the push's event also arrives, but nothing was cached).
  store.tags.set('r/app:missing', 'sha256:a');
  assert.equal(await cache.resolveTag('r', 'app', 'missing'), 'sha256:a');
});

test('a read that raced an invalidation is answered but not kept', async () => {
  const { store, cache } = setup();
  store.tags.set('r/app:v1', 'sha256:old');
  const held = store.holdNextRead();
  const pending = cache.resolveTag('r', 'app', 'v1');
  await held.reached;
  // The tag moves and its event arrives while the read (which saw the old digest) is still out.
  store.tags.set('r/app:v1', 'sha256:new');
  store.emit({ kind: 'manifest', registry: 'r', repository: 'app', digest: 'sha256:new', tag: 'v1' });
  held.release();
  assert.equal(await pending, 'sha256:old');
  assert.equal(await cache.resolveTag('r', 'app', 'v1'), 'sha256:new', 'the raced read was cached');

  // The same for a manifest read raced by its deletion, for a registry deletion and for a resync.
  const races: [ChangeEvent, string][] = [
    [{ kind: 'manifest', registry: 'r', repository: 'app', digest: 'sha256:m' }, 'manifest deleted'],
    [{ kind: 'registry', registry: 'r', change: 'deleted' }, 'registry deleted'],
    [{ kind: 'resync' }, 'resync'],
  ];
  for (const [event, what] of races) {
    store.manifests.set('r/app@sha256:m', record('sha256:m'));
    const gate = store.holdNextRead();
    const read = cache.getManifest('r', 'app', 'sha256:m');
    await gate.reached;
    store.manifests.delete('r/app@sha256:m');
    store.emit(event);
    gate.release();
    assert.ok(await read);
    assert.equal(await cache.getManifest('r', 'app', 'sha256:m'), undefined, `raced by ${what}`);
  }
});

test('a read raced by a change elsewhere is kept; events drop only what they name', async () => {
  const { store, cache } = setup();
  store.tags.set('r/app:v1', 'sha256:a');
  store.tags.set('r/app:v2', 'sha256:b');
  store.tags.set('r/other:v1', 'sha256:c');
  store.tags.set('s/app:v1', 'sha256:d');
  const held = store.holdNextRead();
  const pending = cache.resolveTag('r', 'app', 'v1');
  await held.reached;
  store.emit({ kind: 'manifest', registry: 'r', repository: 'other', tag: 'v9' });
  store.emit({ kind: 'registry', registry: 'r', change: 'updated' });
  held.release();
  await pending;
  for (const [registry, repository, tag] of [
    ['r', 'app', 'v2'],
    ['r', 'other', 'v1'],
    ['s', 'app', 'v1'],
  ] as const)
    await cache.resolveTag(registry, repository, tag);
  const warm = store.reads;
  await cache.resolveTag('r', 'app', 'v1');
  assert.equal(store.reads, warm, 'a read raced only by other repositories was not kept');

  store.emit({ kind: 'manifest', registry: 'r', repository: 'app', tag: 'v1' });
  await cache.resolveTag('r', 'app', 'v1');
  await cache.resolveTag('r', 'app', 'v2');
  assert.equal(store.reads, warm + 1, 'an untag drops only its tag');
  store.emit({ kind: 'manifest', registry: 'r', repository: 'app' });
  await cache.resolveTag('r', 'app', 'v2');
  await cache.resolveTag('r', 'other', 'v1');
  assert.equal(store.reads, warm + 2, 'a repository deletion drops only that repository');
  store.emit({ kind: 'registry', registry: 'r', change: 'deleted' });
  await cache.resolveTag('r', 'other', 'v1');
  await cache.resolveTag('s', 'app', 'v1');
  assert.equal(store.reads, warm + 3, 'a registry deletion drops only that registry');
});

test('the cache stays within its byte budget, evicting what was not read lately first', async () => {
  const budget = 64 * 1024;
  const { store, cache } = setup(budget);
  for (let i = 0; i < 100; i++) store.manifests.set(`r/app@sha256:${i}`, record(`sha256:${i}`, 4000));
  await cache.getManifest('r', 'app', 'sha256:0');
  for (let i = 1; i < 100; i++) {
    await cache.getManifest('r', 'app', `sha256:${i}`);
    // Kept hot: read again after every new one.
    await cache.getManifest('r', 'app', 'sha256:0');
    assert.ok(cache.size <= budget, `${cache.size} bytes held, budget ${budget}`);
  }
  assert.ok(cache.size > budget / 2, 'the cache holds next to nothing');
  const reads = store.reads;
  await cache.getManifest('r', 'app', 'sha256:0');
  await cache.getManifest('r', 'app', 'sha256:99');
  assert.equal(store.reads, reads, 'the hot and the newest manifest were evicted');
  await cache.getManifest('r', 'app', 'sha256:1');
  assert.equal(store.reads, reads + 1, 'the least recently used manifest is still held');
  // A manifest too large for its share of the budget is served, never kept.
  store.manifests.set('r/app@sha256:big', record('sha256:big', budget));
  assert.equal((await cache.getManifest('r', 'app', 'sha256:big'))?.size, budget);
  assert.ok(cache.size <= budget);
  await cache.getManifest('r', 'app', 'sha256:big');
  assert.equal(store.reads, reads + 3);
});

test('a budget of 0 turns the cache off', async () => {
  const { store, cache } = setup(0);
  store.tags.set('r/app:v1', 'sha256:a');
  await cache.resolveTag('r', 'app', 'v1');
  await cache.resolveTag('r', 'app', 'v1');
  assert.equal(store.reads, 2);
  assert.equal(cache.size, 0);
});
