import type { FastifyRequest } from 'fastify';
import {
  type DataPlaneCredentials,
  type DataPlaneIdentity,
  type RegistryAuthSettings,
} from '../../auth/credentials.js';
import { API_KEY_PREFIX } from '../../auth/identities.js';
import { allowedActions, allowsEverywhere, catalogPatterns } from '../../auth/permissions.js';
import { covers, formatScope, type ResourceAccess } from '../../auth/scope.js';
import { InvalidTokenError, type TokenService } from '../../auth/tokens.js';
import { OciError } from '../../errors/oci.js';
import type { V2Route } from './routes.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** A trusted service's identity the network guard let through on the bypass (it alone is used). */
    bypassIdentity: DataPlaneIdentity | undefined;
    /** The repositories `/v2/_catalog` may list for this caller (scope map patterns); undefined: all. */
    catalogFilter: string[] | undefined;
    /** Who the caller signed in as, once known (for the access log). */
    identity: DataPlaneIdentity['ref'] | undefined;
  }
}

/** What a request needs: the resources and actions, and a mount's source (needing pull there). */
export interface RequiredAccess {
  access: ResourceAccess[];
  /** A cross-repository mount: `from` (or undefined for "anywhere in the registry"). */
  mount?: { from: string | undefined };
}

/** The access each data-plane endpoint needs, as distribution's handlers declare it. */
export function requiredAccess(route: V2Route, method: string, query: URLSearchParams): RequiredAccess {
  const repo = (name: string, ...actions: string[]): ResourceAccess[] => [
    { type: 'repository', name, actions },
  ];
  const read = method === 'GET' || method === 'HEAD';
  switch (route.kind) {
    case 'base':
      return { access: [] };
    case 'catalog':
      return { access: [{ type: 'registry', name: 'catalog', actions: ['*'] }] };
    case 'tags':
    case 'referrers':
      return { access: repo(route.name, 'pull') };
    case 'manifest':
    case 'blob':
      if (read) return { access: repo(route.name, 'pull') };
      return { access: repo(route.name, method === 'DELETE' ? 'delete' : 'push') };
    case 'uploads': {
      const mount = query.get('mount');
      return {
        access: repo(route.name, 'push'),
        ...(mount !== null ? { mount: { from: query.get('from') ?? undefined } } : {}),
      };
    }
    case 'upload':
      return { access: repo(route.name, 'push') };
  }
}

/**
 * Refuses an identity limited to some networks (an API key's or token's `allowedIpRanges`) outside them: a leaked
 * key is useless off its network, whatever the registry's rules allow.
 */
export function assertIdentityNetwork(request: FastifyRequest, identity: DataPlaneIdentity): void {
  const allowed = identity.allowedNetworks;
  const client = request.clientAddress;
  if (!allowed || !client || allowed.matches(client)) return;
  throw new OciError(
    'DENIED',
    `client with IP '${client.text}' may not use the credential '${identity.ref.name}': it is limited to other networks`,
    { reason: 'identityNetworkNotAllowed', clientIp: client.text, registry: request.registry },
  );
}

/**
 * Authentication and authorization of `/v2/` requests, after the network guard: Bearer JWTs (from
 * `/oauth2/token`), Basic credentials, Bearer API keys, or anonymous. A caller without credentials is
 * challenged (401 + `WWW-Authenticate: Bearer realm=…,service=…,scope=…`); a signed-in caller asking for
 * what it may not do is refused (403 `DENIED`).
 */
export class DataPlaneAuth {
  constructor(
    private readonly credentials: DataPlaneCredentials,
    private readonly tokens: TokenService,
  ) {}

  /** Throws unless the request may proceed; may drop a mount the caller may not read from. */
  async authorize(request: FastifyRequest, route: V2Route, query: URLSearchParams): Promise<void> {
    const registry = request.registry;
    const settings = await this.credentials.settings(registry);
    const required = requiredAccess(route, request.method, query);
    const caller = await this.caller(request, registry, settings, required);
    request.identity = caller.identity.ref;
    assertIdentityNetwork(request, caller.identity);
    const allows = (r: ResourceAccess) =>
      caller.granted
        ? covers(caller.granted, r)
        : r.actions.every((a) => allowedActions(caller.identity.permissions, r.type, r.name).includes(a));
    const anonymous = caller.identity.ref.kind === 'anonymous';
    if (anonymous && route.kind === 'base')
      throw this.challenge(request, settings, required, 'authentication required');
    for (const r of required.access) {
      if (allows(r)) continue;
      const wanted = `${r.actions.join(',')} on ${r.type === 'registry' ? 'the catalog' : `repository '${r.name}'`}`;
      if (anonymous)
        throw this.challenge(request, settings, required, `authentication required to ${wanted}`);
      // A token that was not asked for this may simply be an older one: challenge so the client asks again.
      if (caller.granted && !caller.asked?.some((a) => covers([a], r)))
        throw this.challenge(
          request,
          settings,
          required,
          `the token does not grant ${wanted}`,
          'insufficient_scope',
        );
      throw new OciError(
        'DENIED',
        `requested access to the resource is denied: '${caller.identity.ref.name}' may not ${wanted} of registry '${registry}'`,
        { registry, identity: caller.identity.ref.name, required: formatScope(r) },
      );
    }
    if (route.kind === 'catalog')
      request.catalogFilter = caller.granted ? caller.catalog : catalogPatterns(caller.identity.permissions);
    if (required.mount && !this.mayMount(caller, required.mount.from)) {
      // The spec lets a registry answer a mount it will not do with a plain upload session (202).
      query.delete('mount');
      query.delete('from');
    }
  }

  private mayMount(caller: Caller, from: string | undefined): boolean {
    const pull = (name: string): ResourceAccess => ({ type: 'repository', name, actions: ['pull'] });
    if (from === undefined) return !caller.granted && allowsEverywhere(caller.identity.permissions, 'pull');
    return caller.granted
      ? covers(caller.granted, pull(from))
      : allowedActions(caller.identity.permissions, 'repository', from).includes('pull');
  }

  private async caller(
    request: FastifyRequest,
    registry: string,
    settings: RegistryAuthSettings | undefined,
    required: RequiredAccess,
  ): Promise<Caller> {
    if (request.bypassIdentity) return { identity: request.bypassIdentity };
    const authorization = request.headers.authorization;
    const clientIp = request.clientAddress?.text ?? 'unknown';
    if (!authorization) return { identity: this.credentials.anonymous(settings) };
    const space = authorization.indexOf(' ');
    const scheme = space === -1 ? authorization.toLowerCase() : authorization.slice(0, space).toLowerCase();
    const value = space === -1 ? '' : authorization.slice(space + 1).trim();
    if (scheme === 'basic') {
      const { username, password } = decodeBasic(value);
      return { identity: await this.credentials.signIn(registry, username, password, clientIp) };
    }
    if (scheme === 'bearer' && value.startsWith(API_KEY_PREFIX))
      return { identity: await this.credentials.apiKey(registry, value, clientIp) };
    if (scheme === 'bearer' && settings) {
      try {
        const verified = await this.tokens.verifyAccess(value, settings.loginServer);
        // The JWT's identity's ranges as they are now, not as they were at minting (see IdentityNetworkCache).
        const allowedNetworks = await this.credentials.networksOf(registry, verified.identity);
        if (allowedNetworks === null) throw new InvalidTokenError('the identity no longer exists');
        return {
          identity: {
            ref: verified.identity,
            permissions: { everywhere: [], rules: [], catalog: false },
            trustedService: false,
            ...(allowedNetworks ? { allowedNetworks } : {}),
          },
          granted: verified.access,
          asked: verified.asked,
          catalog: verified.catalog,
        };
      } catch (error) {
        if (!(error instanceof InvalidTokenError)) throw error;
        request.log.info({ registry, reason: error.message }, 'access token refused');
      }
    }
    throw this.challenge(
      request,
      settings,
      required,
      'the access token is invalid or expired',
      'invalid_token',
    );
  }

  private challenge(
    request: FastifyRequest,
    settings: RegistryAuthSettings | undefined,
    required: RequiredAccess,
    message: string,
    error?: 'invalid_token' | 'insufficient_scope',
  ): OciError {
    const scopes = required.access.filter((r) => r.actions.length > 0).map(formatScope);
    if (required.mount?.from)
      scopes.push(formatScope({ type: 'repository', name: required.mount.from, actions: ['pull'] }));
    return new OciError('UNAUTHORIZED', message, undefined, {
      headers: {
        'WWW-Authenticate': bearerChallenge(
          request,
          settings?.loginServer ?? request.registry,
          scopes,
          error,
        ),
      },
    });
  }
}

interface Caller {
  identity: DataPlaneIdentity;
  /** The access a Bearer token grants (absent for credentials checked on this request). */
  granted?: ResourceAccess[];
  /** What the token's request asked for. */
  asked?: ResourceAccess[] | undefined;
  /** The token's catalog patterns. */
  catalog?: string[] | undefined;
}

/** `Bearer realm="<scheme>://<host>/oauth2/token",service="<loginServer>",scope="…"`. */
export function bearerChallenge(
  request: FastifyRequest,
  service: string,
  scopes: string[],
  error?: string,
): string {
  const host = request.headers.host ?? `${request.hostname}`;
  const parts = [`realm="${request.protocol}://${host}/oauth2/token"`, `service="${service}"`];
  if (scopes.length > 0) parts.push(`scope="${scopes.join(' ')}"`);
  if (error) parts.push(`error="${error}"`);
  return `Bearer ${parts.join(',')}`;
}

/** Splits Basic credentials; malformed ones are an empty user (which never signs in). */
export function decodeBasic(value: string): { username: string; password: string } {
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon <= 0
    ? { username: '', password: '' }
    : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
