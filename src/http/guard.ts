import type { PassThrough } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { IdentityService } from '../auth/identities.js';
import { OciError } from '../errors/oci.js';
import type { EntryPoint, NetworkAccessService } from '../management/network-access.js';
import {
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
  }
}

/** The client address of a request: PROXY source or socket peer, then proxy headers from trusted peers only. */
export function clientAddressOf(request: FastifyRequest, trustedProxies: IpMatcher): ClientAddress {
  const socket = request.raw.socket;
  const peer = socket.proxySource ?? socket.remoteAddress ?? '0.0.0.0';
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

interface Flight {
  request: FastifyRequest;
  body: PassThrough;
}

/**
 * The data plane's network guard. `check` decides every request before credentials are looked at
 * (the trusted-service bypass alone verifies a credential, and only after a denial). `watchBody`
 * follows a streaming request body so that a rule change cuts an upload off mid-way.
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
  }

  /** Lets a later rule change cut the request's body off with `DENIED` while it is being read. */
  watchBody(request: FastifyRequest, body: PassThrough): void {
    const flights = this.flights.get(request.registry) ?? new Set<Flight>();
    this.flights.set(request.registry, flights);
    const flight = { request, body };
    flights.add(flight);
    const done = () => {
      flights.delete(flight);
      if (flights.size === 0 && this.flights.get(request.registry) === flights)
        this.flights.delete(request.registry);
    };
    body.once('close', done);
    request.raw.once('close', done);
  }

  private async recheck(registry: string): Promise<void> {
    const flights = this.flights.get(registry);
    if (!flights) return;
    for (const flight of [...flights]) {
      const client = flight.request.clientAddress;
      if (!client) continue;
      const decision = await this.decide(flight.request, registry, client);
      if (!decision.allowed) {
        flight.request.raw.unpipe(flight.body);
        // The rest of the body will never be read, so the connection cannot be reused.
        flight.body.destroy(this.deny(flight.request, registry, client, decision, true));
      }
    }
  }

  private async decide(
    request: FastifyRequest,
    registry: string,
    client: ClientAddress,
  ): Promise<AccessDecision> {
    const decision = await this.options.access.decide(registry, this.options.entry, client);
    if (decision.allowed || decision.reason === 'privateEndpointNotApproved') return decision;
    // The one exception to "network first": a trusted service's credential may bypass the public rules.
    // It is looked at only when it could change the answer (bypass on) and only if it is an API key, the
    // one kind of identity that can be a trusted service: verifying passwords here would let a refused
    // network test them (a verified secret is cached, so a right guess answers faster) and cost a scrypt
    // per refused request.
    const bypassed = await this.options.access.decide(registry, this.options.entry, client, {
      trustedService: true,
    });
    if (!bypassed.allowed) return decision;
    const authorization = request.headers.authorization;
    if (!authorization || !/^bearer /i.test(authorization)) return decision;
    const principal = await this.options.identities.authenticate(authorization).catch(() => undefined);
    return principal?.trustedService ? bypassed : decision;
  }

  private deny(
    request: FastifyRequest,
    registry: string,
    client: ClientAddress,
    decision: Extract<AccessDecision, { allowed: false }>,
    closeConnection: boolean,
  ): OciError {
    const entry =
      this.options.entry.kind === 'public' ? 'public' : `private:${this.options.entry.connectionName}`;
    const path = request.url.split('?')[0]!.slice(0, 512);
    this.options.access.recordDenial({
      registry,
      time: new Date(),
      clientIp: client.text,
      method: request.method,
      path,
      reason: decision.reason,
      entry,
    });
    request.log.info(
      { registry, clientIp: client.text, reason: decision.reason, path },
      'network access denied',
    );
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
