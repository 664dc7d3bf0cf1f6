import { PassThrough, type Readable } from 'node:stream';
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IdentityService } from '../auth/identities.js';
import { OciError } from '../errors/oci.js';
import type { EntryPoint, NetworkAccessService } from '../management/network-access.js';
import {
  actionOf,
  resolveClientAddress,
  type AccessDecision,
  type ClientAddress,
  type IpMatcher,
} from '../network/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the client is, from the socket (or trusted proxy headers / PROXY protocol). */
    clientAddress: ClientAddress | undefined;
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

/** The client address of a request: PROXY source or socket peer, then proxy headers from trusted peers only. */
export function clientAddressOf(request: FastifyRequest, trustedProxies: IpMatcher): ClientAddress {
  const socket = request.raw.socket;
  const peer = socket.proxySource ?? socket.remoteAddress ?? '0.0.0.0';
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
  identities: IdentityService;
  trustedProxies: IpMatcher;
  entry: EntryPoint;
}

/** A request in progress: its response, and its body when the guard wraps one. */
interface Flight {
  request: FastifyRequest;
  response: ServerResponse;
  body?: PassThrough;
}

/**
 * The data plane's network guard. `check` decides every request before credentials are looked at
 * (the trusted-service bypass alone verifies a credential, and only after a denial). `track` follows
 * an admitted request until its response is done and `guardBody` wraps its streaming body, so that a
 * rule change cuts off an upload (403 DENIED) or a download (connection closed) mid-way.
 */
export class NetworkGuard {
  private readonly flights = new Map<string, Set<Flight>>();
  private readonly flightOf = new WeakMap<FastifyRequest, Flight>();
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
    const flights = this.flights.get(registry) ?? new Set<Flight>();
    this.flights.set(registry, flights);
    const flight: Flight = { request, response: reply.raw };
    flights.add(flight);
    this.flightOf.set(request, flight);
    reply.raw.once('close', () => {
      flights.delete(flight);
      if (flights.size === 0 && this.flights.get(registry) === flights) this.flights.delete(registry);
    });
  }

  /** The request body, which a later rule change can cut off with `DENIED`. */
  guardBody(request: FastifyRequest): Readable {
    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    request.raw.on('error', (error) => body.destroy(error));
    request.raw.pipe(body);
    const flight = this.flightOf.get(request);
    if (flight) flight.body = body;
    return body;
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
    // per refused request.
    const bypassed = await this.options.access.decide(
      registry,
      this.options.entry,
      client,
      { trustedService: true },
      action,
    );
    if (!bypassed.allowed) return decision;
    const authorization = request.headers.authorization;
    if (!authorization || !/^bearer /i.test(authorization)) return decision;
    const principal = await this.options.identities.authenticate(authorization).catch(() => undefined);
    if (!principal?.trustedService) return decision;
    if (!principal.allowedNetworks) return bypassed;
    // The key's own ranges apply too: a trusted key used off its network bypasses nothing.
    const limited = await this.options.access.decide(
      registry,
      this.options.entry,
      client,
      { trustedService: true, allowedNetworks: principal.allowedNetworks, name: principal.name },
      action,
    );
    return limited.allowed ? limited : decision;
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
    request.networkDenied = true;
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
