import type { PassThrough } from 'node:stream';
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DataPlaneCredentials, DataPlaneIdentity } from '../auth/credentials.js';
import { API_KEY_PREFIX } from '../auth/identities.js';
import { OciError } from '../errors/oci.js';
import type { EntryPoint, NetworkAccessService } from '../management/network-access.js';
import {
  actionOf,
  parseClientAddress,
  resolveClientAddress,
  type AccessDecision,
  type ClientAddress,
  type IpMatcher,
} from '../network/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the client is, from the socket (or trusted proxy headers / PROXY protocol). */
    clientAddress: ClientAddress | undefined;
    /** Why the guard refused the request (for metrics and the access log). */
    networkDenial: string | undefined;
  }
}

declare module 'node:net' {
  interface Socket {
    /** The source address a trusted load balancer reported with the PROXY protocol. */
    proxySource?: string;
    /**
     * The load balancer sent PROXY UNKNOWN / LOCAL: it could not say who the client is, so whoever
     * wrote the request's proxy headers is unknown too, and they are not believed.
     */
    proxySourceUnknown?: boolean;
  }
}

/**
 * A connection's client address, when no header of its requests can change it (its peer is no trusted
 * proxy): parsed once per connection instead of once per request.
 */
const connectionClients = new WeakMap<object, { trustedProxies: IpMatcher; client: ClientAddress }>();

/** The client address of a request: PROXY source or socket peer, then proxy headers from trusted peers only. */
export function clientAddressOf(request: FastifyRequest, trustedProxies: IpMatcher): ClientAddress {
  const socket = request.raw.socket;
  const known = connectionClients.get(socket);
  if (known?.trustedProxies === trustedProxies) return known.client;
  const peer = socket.proxySource ?? socket.remoteAddress ?? '0.0.0.0';
  const direct = parseClientAddress(peer);
  if (direct && !trustedProxies.matches(direct)) {
    connectionClients.set(socket, { trustedProxies, client: direct });
    return direct;
  }
  if (socket.proxySourceUnknown) return resolveClientAddress({ peer, trustedProxies });
  return resolveClientAddress({
    peer,
    forwarded: request.headers.forwarded,
    xForwardedFor: request.headers['x-forwarded-for'],
    trustedProxies,
  });
}

export interface NetworkGuardOptions {
  access: NetworkAccessService;
  /** Verifies a trusted service's API key when the bypass could let its request in. */
  credentials: DataPlaneCredentials;
  trustedProxies: IpMatcher;
  entry: EntryPoint;
}

/** An API key sent as `Bearer berth_…` or as the password of Basic credentials. */
function apiKeyIn(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const [scheme, value = ''] = authorization.split(' ', 2);
  if (/^bearer$/i.test(scheme ?? '') && value.startsWith(API_KEY_PREFIX)) return value;
  if (/^basic$/i.test(scheme ?? '')) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const password = decoded.slice(decoded.indexOf(':') + 1);
    if (decoded.includes(':') && password.startsWith(API_KEY_PREFIX)) return password;
  }
  return undefined;
}

/** A request in progress: its response, and its body when the guard wraps one. */
interface Flight {
  request: FastifyRequest;
  response: ServerResponse;
  body?: PassThrough;
  /** The set it is in (its registry's), to leave it when the response closes. */
  flights: Set<Flight>;
  registry: string;
  guard: NetworkGuard;
}

const FLIGHT = Symbol('berth.flight');

/**
 * One shared 'close' listener for every tracked response (`this` is the response): tracking runs on
 * every request, and a closure plus `once`'s wrapper per request showed in profiles.
 */
function endFlight(this: ServerResponse & { [FLIGHT]?: Flight }): void {
  const flight = this[FLIGHT];
  if (!flight) return;
  this[FLIGHT] = undefined;
  flight.flights.delete(flight);
  flight.guard.forget(flight);
}

/**
 * The data plane's network guard. `check` decides every request before credentials are looked at
 * (the trusted-service bypass alone verifies a credential, and only after a denial). `track` follows
 * an admitted request until its response is done and `watchBody` follows its streaming body, so that a
 * rule change cuts off an upload (403 DENIED) or a download (connection closed) mid-way.
 */
export class NetworkGuard {
  private readonly flights = new Map<string, Set<Flight>>();
  private readonly unsubscribe: () => void;

  constructor(private readonly options: NetworkGuardOptions) {
    this.unsubscribe = options.access.onPolicyChange((registry) => void this.recheck(registry));
  }

  close(): void {
    this.unsubscribe();
  }

  /** Throws `DENIED` (403) when the request's network may not reach the registry. */
  async check(request: FastifyRequest, registry: string): Promise<void> {
    const client = clientAddressOf(request, this.options.trustedProxies);
    request.clientAddress = client;
    const decision = await this.decide(request, registry, client);
    if (!decision.allowed) throw this.deny(request, registry, client, decision, false);
    if (decision.wouldDeny) this.record(request, registry, client, decision.wouldDeny.reason, true);
  }

  /** Follows an admitted request until its response is done, so a rule change can cut it off. */
  track(request: FastifyRequest, reply: FastifyReply): void {
    const registry = request.registry;
    let flights = this.flights.get(registry);
    if (!flights) {
      flights = new Set<Flight>();
      this.flights.set(registry, flights);
    }
    const flight: Flight = { request, response: reply.raw, flights, registry, guard: this };
    flights.add(flight);
    (reply.raw as ServerResponse & { [FLIGHT]?: Flight })[FLIGHT] = flight;
    reply.raw.on('close', endFlight);
  }

  /** Lets a later rule change cut the request's body off with `DENIED` while it is being read. */
  watchBody(request: FastifyRequest, body: PassThrough): void {
    // Uploads are few next to GETs: finding the flight by a scan keeps per-request tracking cheap.
    for (const flight of this.flights.get(request.registry) ?? [])
      if (flight.request === request) flight.body = body;
  }

  /** Drops a registry's set once its last flight has landed. */
  forget(flight: Flight): void {
    if (flight.flights.size === 0 && this.flights.get(flight.registry) === flight.flights)
      this.flights.delete(flight.registry);
  }

  private async recheck(registry: string): Promise<void> {
    const flights = this.flights.get(registry);
    if (!flights) return;
    for (const flight of [...flights]) {
      const client = flight.request.clientAddress;
      if (!client || flight.response.writableFinished) continue;
      const decision = await this.decide(flight.request, registry, client);
      if (decision.allowed) continue;
      const denied = this.deny(flight.request, registry, client, decision, true);
      if (flight.body && !flight.body.readableEnded && !flight.body.destroyed) {
        flight.request.raw.unpipe(flight.body);
        // The rest of the body will never be read, so the connection cannot be reused.
        flight.body.destroy(denied);
      } else {
        // A response under way (a download) cannot turn into a 403 any more: end the connection, so
        // the client gets no byte more than it had when its address lost access.
        flight.response.destroy();
      }
    }
  }

  private async decide(
    request: FastifyRequest,
    registry: string,
    client: ClientAddress,
  ): Promise<AccessDecision> {
    const action = actionOf(request.method);
    const decision = await this.options.access.decide(
      registry,
      this.options.entry,
      client,
      undefined,
      action,
    );
    if (decision.allowed || decision.reason === 'privateEndpointNotApproved') return decision;
    // The one exception to "network first": a trusted service's credential may bypass the public rules.
    // It is looked at only when it could change the answer (bypass on) and only if it is an API key, the
    // one kind of identity that can be a trusted service: verifying passwords here would let a refused
    // network test them (a verified secret is cached, so a right guess answers faster) and cost a scrypt
    // per refused request. The key must be marked trusted and hold a role on this registry; the request
    // is then authorized with that identity alone, so it gets only the actions its role grants.
    const bypassed = await this.options.access.decide(
      registry,
      this.options.entry,
      client,
      { trustedService: true },
      action,
    );
    if (!bypassed.allowed) return decision;
    const identity = await this.trustedIdentity(request, registry, client);
    if (!identity) return decision;
    if (identity.allowedNetworks) {
      // The key's own ranges apply too: a trusted key used off its network bypasses nothing.
      const limited = await this.options.access.decide(
        registry,
        this.options.entry,
        client,
        { trustedService: true, allowedNetworks: identity.allowedNetworks, name: identity.ref.name },
        action,
      );
      if (!limited.allowed) return decision;
      request.bypassIdentity = identity;
      return limited;
    }
    request.bypassIdentity = identity;
    return bypassed;
  }

  private async trustedIdentity(
    request: FastifyRequest,
    registry: string,
    client: ClientAddress,
  ): Promise<DataPlaneIdentity | undefined> {
    const key = apiKeyIn(request.headers.authorization);
    if (!key) return undefined;
    const identity = await this.options.credentials.apiKey(registry, key, client.text).catch(() => undefined);
    return identity?.trustedService ? identity : undefined;
  }

  /** Counts a denial (or, in report-only mode, a would-be denial) in the denial log. */
  private record(
    request: FastifyRequest,
    registry: string,
    client: ClientAddress,
    reason: string,
    reportOnly: boolean,
  ): void {
    const entry =
      this.options.entry.kind === 'public' ? 'public' : `private:${this.options.entry.connectionName}`;
    this.options.access.recordDenial({
      registry,
      time: new Date(),
      clientIp: client.text,
      method: request.method,
      path: request.url.split('?')[0]!.slice(0, 512),
      reason,
      entry,
      ...(reportOnly ? { reportOnly: true } : {}),
    });
  }

  private deny(
    request: FastifyRequest,
    registry: string,
    client: ClientAddress,
    decision: Extract<AccessDecision, { allowed: false }>,
    closeConnection: boolean,
  ): OciError {
    request.networkDenial = decision.reason;
    this.record(request, registry, client, decision.reason, false);
    return new OciError(
      'DENIED',
      decision.message,
      { reason: decision.reason, clientIp: client.text, registry },
      {
        headers: closeConnection ? { Connection: 'close' } : {},
      },
    );
  }
}
