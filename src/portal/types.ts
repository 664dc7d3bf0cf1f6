// Resource shapes: the CLI's (src/api-client/types.ts), plus what only the portal reads.
export type {
  ConnectionStatus,
  IpRule,
  NetworkAccessCheck,
  NetworkDenial,
  PrivateEndpointConnection,
  Registry,
  RegistryCredentials,
  RegistryEndpoints,
  RegistryPatch,
  RegistryUsage,
  RepositoryInfo,
  SkuName,
  TagInfo,
} from '../api-client/types.js';
import type { NetworkDenials, WhoAmI } from '../api-client/types.js';

/** The signed-in caller, as `POST /api/sessions` and `GET /api/whoami` describe it. */
export interface Me extends WhoAmI {
  /** The address Berth sees for this browser. */
  clientIp: string;
}

/** `networkDenials` with the per-minute series (issue 9's contract; older servers omit it). */
export interface Denials extends NetworkDenials {
  timeSeries?: { time: string; counts: Record<string, number> }[];
}

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  artifactType?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** `GET .../manifests/{reference}`. */
export interface ManifestDetails {
  digest: string;
  mediaType: string;
  size: number;
  totalSize: number;
  artifactType?: string;
  subject?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
  referrers: Descriptor[];
}
