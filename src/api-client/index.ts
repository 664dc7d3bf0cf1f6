export * from './errors.js';
export * from './management-client.js';
export * from './data-plane-probe.js';
export type * from './types.js';
