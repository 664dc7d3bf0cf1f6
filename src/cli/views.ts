// Berth's API nests settings under `properties` and names an IP rule's address `value` (ARM's wire
// format); the Azure CLI prints resources flattened, with `ipAddressOrRange`. The CLI prints the az
// shape so `--query networkRuleSet.defaultAction` and friends port from `az acr` scripts unchanged.

import type { IpRule, PrivateEndpointConnection, Registry } from '../api-client/index.js';
import type { TableSpec } from './output.js';

/** An IP rule as az prints it. */
export interface IpRuleView {
  action: string;
  ipAddressOrRange: string;
  actions?: string;
  expiresAt?: string;
  expired?: boolean;
}

/** A registry as `az acr show` prints it: `properties` flattened into the top level. */
export function registryView(registry: Registry): Record<string, unknown> {
  const { networkRuleSet, privateEndpointConnections, ...properties } = registry.properties ?? {};
  return {
    ...properties,
    id: registry.id,
    name: registry.name,
    type: registry.type,
    sku: registry.sku,
    networkRuleSet: networkRuleSet
      ? { ...networkRuleSet, ipRules: (networkRuleSet.ipRules ?? []).map(ipRuleView) }
      : null,
    privateEndpointConnections: (privateEndpointConnections ?? []).map(connectionView),
  };
}

/** `{ action, value }` → `{ action, ipAddressOrRange }`. */
export function ipRuleView(
  rule: IpRule | { action?: string; value?: string; ipAddressOrRange?: string },
): IpRuleView {
  const loose = rule as {
    action?: string;
    value?: string;
    ipAddressOrRange?: string;
    actions?: string;
    expiresAt?: string;
    expired?: boolean;
  };
  // Berth's extra attributes appear only on rules that have them, so plain rules print as az's do.
  return {
    action: loose.action ?? 'Allow',
    ipAddressOrRange: loose.value ?? loose.ipAddressOrRange ?? '',
    ...(loose.actions !== undefined ? { actions: loose.actions } : {}),
    ...(loose.expiresAt !== undefined ? { expiresAt: loose.expiresAt } : {}),
    ...(loose.expired ? { expired: true } : {}),
  };
}

/** A private endpoint connection as az prints it: `properties` flattened. */
export function connectionView(connection: PrivateEndpointConnection): Record<string, unknown> {
  return { ...connection.properties, id: connection.id, name: connection.name, type: connection.type };
}

/** az's registry table columns. */
export const REGISTRY_TABLE: TableSpec = {
  columns: [
    { header: 'NAME', value: (r) => r.name },
    { header: 'SKU', value: (r) => (r.sku as { name?: string } | undefined)?.name },
    { header: 'LOGIN SERVER', value: (r) => r.loginServer },
    { header: 'CREATION DATE', value: (r) => r.creationDate },
    { header: 'ADMIN ENABLED', value: (r) => r.adminUserEnabled },
  ],
};

/** Table of a private endpoint connection (flattened view). */
export const CONNECTION_TABLE: TableSpec = {
  columns: [
    { header: 'NAME', value: (c) => c.name },
    { header: 'ADDRESS', value: (c) => (c.privateEndpoint as { address?: string } | undefined)?.address },
    {
      header: 'STATUS',
      value: (c) => (c.privateLinkServiceConnectionState as { status?: string } | undefined)?.status,
    },
    {
      header: 'DESCRIPTION',
      value: (c) =>
        (c.privateLinkServiceConnectionState as { description?: string } | undefined)?.description,
    },
  ],
};
