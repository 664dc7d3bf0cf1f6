import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IdentityService, Principal } from '../../auth/identities.js';
import type { PortalSessions } from '../../auth/sessions.js';
import type { SignInLog } from '../../auth/sign-in-log.js';
import type { TokenService } from '../../auth/tokens.js';
import type { RegistryTokens } from '../../management/tokens.js';
import type { IpRuleOperations } from '../../management/ip-rules.js';
import type { IpSetManager } from '../../management/ip-sets.js';
import type { NetworkAccessService } from '../../management/network-access.js';
import type { PrivateEndpointManager } from '../../management/private-endpoints.js';
import type { RegistryManager, WriteCondition } from '../../management/registries.js';
import type { IpMatcher } from '../../network/index.js';
import type { DenialAuditStore, MetadataStore, RoleName } from '../../store/types.js';
import type { RouteDoc } from './openapi.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
}

/** What the management API's route modules need (they never import the app that registers them). */
export interface ManagementContext {
  registries: RegistryManager;
  /** Atomic add/remove of IP rules. */
  ipRules: IpRuleOperations;
  /** Named IP sets. */
  ipSets: IpSetManager;
  privateEndpoints: PrivateEndpointManager;
  access: NetworkAccessService;
  identities: IdentityService;
  meta: MetadataStore;
  audit: DenialAuditStore;
  trustedProxies: IpMatcher;
  /** Public data-plane URLs, for `show-endpoints`. */
  dataEndpoints: string[];
  /** The registry reached by hosts that name none. */
  defaultRegistry: string;
  /** Scope maps and repository-scoped tokens. */
  tokens: RegistryTokens;
  /** Signs the short-lived login tokens `berth login --name` uses. */
  tokenService: TokenService;
  signIns: SignInLog;
  /** The portal's sign-in sessions. */
  sessions: PortalSessions;
  /** Registers a documented route (validated by its schemas, listed in the OpenAPI document). */
  route: (doc: RouteDoc) => void;
  /**
   * Checks the caller's role on a registry, then resolves it: the role comes first, so a caller
   * without one learns nothing (403), not even whether the registry exists (404).
   */
  registryFor: (principal: Principal, name: string, role: RoleName) => Promise<string>;
}

/** The write precondition a request carries (`If-Match`), for conditional PUT/PATCH/DELETE. */
export function writeCondition(request: FastifyRequest): WriteCondition {
  const value = request.headers['if-match'];
  return value === undefined ? {} : { ifMatch: Array.isArray(value) ? value.join(', ') : value };
}

/** Sets the registry's current ETag on a response. */
export function sendEtag(reply: FastifyReply, etag: string): void {
  reply.header('ETag', etag);
}

/** Tells the caller what was changed on its behalf (RFC 9111 Warning header, shown by the CLI). */
export function warn(reply: FastifyReply, warnings: string[]): void {
  if (warnings.length > 0)
    reply.header('Warning', warnings.map((w) => `299 berth "${w.replace(/"/g, "'")}"`).join(', '));
}
