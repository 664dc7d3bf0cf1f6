/** A stored object that was asked for is not there. */
export class StoreNotFoundError extends Error {
  constructor(what: string) {
    super(`${what} not found`);
    this.name = 'StoreNotFoundError';
  }
}
