/**
 * Per-digest mutual exclusion between the steps that bring a blob's bytes and its record together (an
 * upload's commit, a mount) and garbage collection removing both. Without it a commit could find the
 * file present (and discard its own copy) just before the collector unlinks it. One process needs only
 * `InProcessBlobLocks`; nodes sharing a database need a lock they all see (`PgAdvisoryBlobLocks`).
 */
export interface BlobLocks {
  /** Runs `work` while holding the lock of `registry`'s `digest`. */
  withLock<T>(registry: string, digest: string, work: () => Promise<T>): Promise<T>;
  close?(): Promise<void>;
}

/** The lock inside one process: waiters on one digest run in arrival order. */
export class InProcessBlobLocks implements BlobLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `work` while holding the lock of `registry`'s `digest`; waiters run in arrival order. */
  async withLock<T>(registry: string, digest: string, work: () => Promise<T>): Promise<T> {
    const key = `${registry}\u0000${digest}`;
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
