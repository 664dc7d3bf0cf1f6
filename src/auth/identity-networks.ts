import type { IpMatcher } from '../network/index.js';
import type { TokenRecord } from '../store/types.js';
import type { IdentityRef } from './tokens.js';

/** A repository-scoped token's own address ranges (canonical CIDRs), kept in its `properties`. */
export function tokenAllowedIpRanges(token: TokenRecord): string[] | undefined {
  const ranges = token.properties.allowedIpRanges;
  return Array.isArray(ranges) && ranges.length > 0 ? (ranges as string[]) : undefined;
}

/**
 * An identity's current address ranges: undefined when it is not limited, null when it no longer
 * exists (its JWTs are refused then, rather than being let through unlimited).
 */
export type IdentityNetworks = IpMatcher | undefined | null;

/** Loads an identity's current address ranges. */
export type IdentityNetworkLoader = (registry: string, ref: IdentityRef) => Promise<IdentityNetworks>;

const MAX_ENTRIES = 10_000;

/**
 * The current address ranges of the identities Bearer JWTs name, cached per identity.
 *
 * Why not a claim in the JWT: a claim freezes the ranges at minting time, so narrowing a leaked
 * token's ranges would not reach the JWTs already out there; and a fingerprint claim still needs the
 * current ranges to compare against. So each Bearer use resolves the JWT's identity to its ranges now.
 * A store read per manifest GET would be the hot path's cost, hence this cache: hits are one Map
 * lookup; entries (also "no ranges") live `ttlMs`, and a token's change on this server drops its
 * entry at once (`forgetToken`, from the change feed on every node), so the TTL only bounds a missed event.
 * API keys' ranges never change after creation; a deleted identity's entry is dropped (its JWTs are
 * refused from then on).
 */
export class IdentityNetworkCache {
  private readonly entries = new Map<string, { networks: IdentityNetworks; until: number }>();
  /** Bumped by every change, so a load that started before one does not cache what it read. */
  private generation = 0;

  constructor(
    private readonly load: IdentityNetworkLoader,
    private readonly ttlMs = 10_000,
  ) {}

  /** The identity's address ranges; undefined when it has none (admin, anonymous, unlimited), null when gone. */
  async get(registry: string, ref: IdentityRef): Promise<IdentityNetworks> {
    if (ref.kind !== 'token' && ref.kind !== 'apiKey' && ref.kind !== 'user') return undefined;
    const key = keyOf(registry, ref.kind, ref.id);
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.until > now) return hit.networks;
    const generation = this.generation;
    const networks = await this.load(registry, ref);
    if (generation !== this.generation) return networks;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, { networks, until: now + this.ttlMs });
    return networks;
  }

  /** Drops a deleted management identity's (API key's, user's) entry. */
  forgetIdentity(id: string): void {
    this.generation++;
    this.entries.delete(keyOf('', 'apiKey', id));
    this.entries.delete(keyOf('', 'user', id));
  }

  /** Drops every entry (events may have been missed, or a change touches many identities). */
  forgetAll(): void {
    this.generation++;
    this.entries.clear();
  }

  /** Drops a token's entry, so its changed ranges apply to the next request. */
  forgetToken(registry: string, name: string): void {
    this.generation++;
    this.entries.delete(keyOf(registry, 'token', name));
  }
}

function keyOf(registry: string, kind: IdentityRef['kind'], id: string): string {
  // Management identities' ranges do not depend on the registry: one entry serves them all.
  return kind === 'token' ? `token\0${registry}\0${id}` : `${kind}\0${id}`;
}
