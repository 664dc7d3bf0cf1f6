import { ManagementError } from '../errors/management.js';
import { parseClientAddress, type PrivateEndpointConnectionState } from '../network/index.js';
import {
  toPrivateEndpointResource,
  type RegistrySettings,
  type StoredPrivateEndpoint,
} from './registry-model.js';
import type { RegistryManager } from './registries.js';
import { NETWORK_RULES_PREMIUM_ONLY } from './skus.js';

/** Opens and closes the dedicated listener of a private endpoint (implemented by the HTTP layer). */
export interface EndpointListeners {
  open(registry: string, connectionName: string, address: string): Promise<void>;
  close(registry: string, connectionName: string): Promise<void>;
}

export interface PrivateEndpointBody {
  properties?: {
    privateEndpoint?: { address: string };
    privateLinkServiceConnectionState?: { status?: PrivateEndpointConnectionState; description?: string };
  };
}

const CONNECTION_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

/** Private endpoint connections: each a separate entry point, governed by its approval state alone. */
export class PrivateEndpointManager {
  constructor(
    private readonly registries: RegistryManager,
    private readonly listeners: EndpointListeners,
    private readonly reservedAddresses: string[],
  ) {}

  async list(registry: string) {
    const { record, settings } = await this.registries.settings(registry);
    return settings.privateEndpointConnections.map((pe) => toPrivateEndpointResource(record.name, pe));
  }

  async get(registry: string, name: string) {
    const { record, settings } = await this.registries.settings(registry);
    return toPrivateEndpointResource(record.name, find(settings.privateEndpointConnections, name));
  }

  /** Creates a connection (opening its listener) or changes its approval state. */
  async put(registry: string, name: string, body: PrivateEndpointBody) {
    const { record, settings } = await this.registries.settings(registry);
    const state = body.properties?.privateLinkServiceConnectionState;
    if (settings.privateEndpointConnections.some((pe) => pe.name === name)) {
      const result = await this.registries.mutate(record.name, (current) => {
        const existing = find(current.privateEndpointConnections, name);
        const address = body.properties?.privateEndpoint?.address;
        // Compared canonically: a client may PUT back the address as it first wrote it.
        if (address !== undefined && canonicalAddress(address) !== existing.address) {
          throw new ManagementError(
            'InvalidParameter',
            'The address of a private endpoint connection cannot change; delete and re-create it.',
            { target: 'properties.privateEndpoint.address' },
          );
        }
        if (state?.status !== undefined) existing.status = state.status;
        if (state?.description !== undefined) existing.description = state.description;
        return { settings: current, warnings: [], outcome: existing };
      });
      return { resource: toPrivateEndpointResource(record.name, result.outcome), created: false };
    }

    if (!CONNECTION_NAME_RE.test(name)) {
      throw new ManagementError(
        'InvalidParameter',
        `Private endpoint connection name '${name.slice(0, 90)}' is invalid: use 1-80 letters, digits, '.', '_' or '-'.`,
        { target: 'name' },
      );
    }
    this.checkRoomFor(settings);
    const address = body.properties?.privateEndpoint?.address;
    if (address === undefined) {
      throw new ManagementError(
        'InvalidRequestContent',
        'properties.privateEndpoint.address is required to create a private endpoint connection.',
        {
          target: 'properties.privateEndpoint.address',
        },
      );
    }
    const canonical = canonicalAddress(address);
    const inUse = [...this.reservedAddresses, ...(await this.allAddresses())];
    if (inUse.includes(canonical)) {
      throw new ManagementError('Conflict', `The address ${canonical} is already used by another listener.`, {
        target: 'properties.privateEndpoint.address',
      });
    }
    try {
      await this.listeners.open(record.name, name, canonical);
    } catch (error) {
      throw new ManagementError(
        'InvalidParameter',
        `Cannot listen on ${canonical}: ${(error as Error).message}`,
        {
          target: 'properties.privateEndpoint.address',
        },
      );
    }
    const pe: StoredPrivateEndpoint = {
      name,
      address: canonical,
      status: state?.status ?? 'Pending',
      description: state?.description ?? '',
    };
    try {
      await this.registries.mutate(record.name, (current) => {
        // Re-checked on the settings being written: a concurrent create may have taken the name or room.
        if (current.privateEndpointConnections.some((c) => c.name === name))
          throw new ManagementError('Conflict', `Private endpoint connection '${name}' was just created.`);
        this.checkRoomFor(current);
        current.privateEndpointConnections.push(pe);
        return { settings: current, warnings: [], outcome: undefined };
      });
    } catch (error) {
      await this.listeners.close(record.name, name);
      throw error;
    }
    return { resource: toPrivateEndpointResource(record.name, pe), created: true };
  }

  /** Deletes a connection and closes its listener. */
  async delete(registry: string, name: string): Promise<void> {
    const result = await this.registries.mutate(registry, (current, stored) => {
      find(current.privateEndpointConnections, name);
      current.privateEndpointConnections = current.privateEndpointConnections.filter(
        (pe) => pe.name !== name,
      );
      return { settings: current, warnings: [], outcome: stored.name };
    });
    await this.listeners.close(result.outcome, name);
  }

  private checkRoomFor(settings: RegistrySettings): void {
    const plan = this.registries.planFor(settings);
    if (!plan.networkRules)
      throw new ManagementError('SkuNotSupported', NETWORK_RULES_PREMIUM_ONLY, { target: 'sku.name' });
    if (settings.privateEndpointConnections.length >= plan.maxPrivateEndpoints) {
      throw new ManagementError(
        'InvalidParameter',
        `A registry in the ${settings.sku} SKU can have at most ${plan.maxPrivateEndpoints} private endpoint connections.`,
      );
    }
  }

  private async allAddresses(): Promise<string[]> {
    const all = await this.registries.list();
    return all.flatMap((r) =>
      r.properties.privateEndpointConnections.map((pe) => pe.properties.privateEndpoint.address),
    );
  }
}

function find(connections: StoredPrivateEndpoint[], name: string): StoredPrivateEndpoint {
  const pe = connections.find((c) => c.name === name);
  if (!pe)
    throw new ManagementError('ResourceNotFound', `Private endpoint connection '${name}' was not found.`);
  return pe;
}

/** `host:port` with an IP literal host, written canonically (`[v6]:port`). */
export function canonicalAddress(address: string): string {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address.trim());
  const port = match ? Number(match[3]) : NaN;
  const host = match ? parseClientAddress((match[1] ?? match[2])!) : undefined;
  if (!match || !host || port < 1 || port > 65535) {
    throw new ManagementError(
      'InvalidParameter',
      `Private endpoint address '${address.slice(0, 100)}' must be <IP address>:<port>, e.g. 127.0.0.1:5101 or [::1]:5101.`,
      {
        target: 'properties.privateEndpoint.address',
      },
    );
  }
  return host.family === 6 ? `[${host.text}]:${port}` : `${host.text}:${port}`;
}
