/** A stored object that was asked for is not there. */
export class StoreNotFoundError extends Error {
  constructor(what: string) {
    super(`${what} not found`);
    this.name = 'StoreNotFoundError';
  }
}

/**
 * A write lost a race: another writer (another node) changed the object since this one looked at it.
 * Nothing was changed by the losing write; the caller re-reads the state and tries again.
 */
export class StoreConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreConflictError';
  }
}
