// ns per decideAccess with defaultAction Deny, at a realistic (100) and an extreme (100,000) rule
// count. The point is that the second number is not much bigger than the first: the trie's cost is
// bounded by address length, not by the number of rules.

import { pathToFileURL } from 'node:url';
import {
  compileIpRules,
  compileNetworkPolicy,
  decideAccess,
  formatAddress,
  parseClientAddress,
  type AccessEntry,
  type ClientAddress,
} from '../src/network/index.js';

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  target?: string;
}

/** Deterministic PRNG (mulberry32) so runs are comparable. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(next: () => number, n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = Math.floor(next() * 256);
  return bytes;
}

/** Half IPv4 (/8–/32), half IPv6 (/16–/128): the mix an enterprise allow-list grows into. */
function randomRules(next: () => number, count: number): { rules: string[]; networks: Uint8Array[] } {
  const rules: string[] = [];
  const networks: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const v4 = i % 2 === 0;
    const bytes = randomBytes(next, v4 ? 4 : 16);
    const length = v4 ? 8 + Math.floor(next() * 25) : 16 + Math.floor(next() * 113);
    rules.push(`${formatAddress(bytes)}/${length}`);
    networks.push(bytes);
  }
  return { rules, networks };
}

/** Clients: half inside a random rule (allowed via the trie), half random (mostly denied). */
function randomClients(next: () => number, networks: Uint8Array[], count: number): ClientAddress[] {
  const clients: ClientAddress[] = [];
  for (let i = 0; i < count; i++) {
    const family = i % 4 < 2 ? 4 : 16;
    const bytes =
      i % 2 === 0 ? networks[Math.floor(next() * networks.length)]!.slice() : randomBytes(next, family);
    clients.push(parseClientAddress(formatAddress(bytes))!);
  }
  return clients;
}

function measure(rules: number, seed: number): { nsPerOp: number; compileMs: number; allowedShare: number } {
  const next = random(seed);
  const { rules: values, networks } = randomRules(next, rules);
  const started = process.hrtime.bigint();
  const policy = compileNetworkPolicy({
    publicNetworkAccess: 'Enabled',
    defaultAction: 'Deny',
    ipRules: values,
    networkRuleBypassOptions: 'None',
  });
  const compileMs = Number(process.hrtime.bigint() - started) / 1e6;
  const clients = randomClients(next, networks, 4096);
  const entry: AccessEntry = { kind: 'public' };
  let allowed = 0;
  const run = (iterations: number): void => {
    for (let i = 0; i < iterations; i++) {
      if (decideAccess(policy, entry, clients[i & 4095]!).allowed) allowed++;
    }
  };
  run(200_000); // warm-up: let the JIT settle on the hot path
  allowed = 0;
  const iterations = 2_000_000;
  const start = process.hrtime.bigint();
  run(iterations);
  const elapsed = Number(process.hrtime.bigint() - start);
  return { nsPerOp: elapsed / iterations, compileMs, allowedShare: allowed / iterations };
}

/**
 * The same at 10,000 rules with every kind in play: a third pull-only, a third expiring (in an
 * hour), a named IP set of 1,000 ranges, pushes (which consult the push matcher too), and an
 * identity with its own ranges.
 */
export function measureKinds(seed: number): number {
  const next = random(seed);
  const { rules: values, networks } = randomRules(next, 10_000);
  const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
  const setRanges = randomRules(next, 1_000).rules;
  const policy = compileNetworkPolicy(
    {
      publicNetworkAccess: 'Enabled',
      defaultAction: 'Deny',
      ipRules: [
        ...values.map((value, i) =>
          i % 3 === 0 ? { value, actions: 'pull' as const } : i % 3 === 1 ? { value, expiresAt } : { value },
        ),
        { value: 'ipSet:office', ipSet: 'office' },
      ],
      networkRuleBypassOptions: 'None',
      enforcement: 'Enforced',
    },
    { ipSets: new Map([['office', setRanges]]) },
  );
  const identity = { trustedService: false, allowedNetworks: compileIpRules(['0.0.0.0/1', '::/1']) };
  const clients = randomClients(next, networks, 4096);
  const entry: AccessEntry = { kind: 'public' };
  let allowed = 0;
  const run = (iterations: number): void => {
    for (let i = 0; i < iterations; i++) {
      const action = (i & 1) === 0 ? 'pull' : 'push';
      if (decideAccess(policy, entry, clients[i & 4095]!, identity, action).allowed) allowed++;
    }
  };
  run(200_000);
  allowed = 0;
  const iterations = 2_000_000;
  const start = process.hrtime.bigint();
  run(iterations);
  const nsPerOp = Number(process.hrtime.bigint() - start) / iterations;
  // Both answers must occur, or the bench measured only one path.
  if (allowed === 0 || allowed === iterations)
    throw new Error(`bench clients were all ${allowed ? 'allowed' : 'denied'}`);
  return nsPerOp;
}

/** Measures decideAccess latency at 100 and 100,000 rules, and with every rule kind; each < 1 µs. */
export async function benchNetworkDecision(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  results.push({
    name: 'decideAccess (10,000 rules: pull-only, expiring, IP set, identity ranges; pull+push)',
    value: Math.round(measureKinds(0xbe28) * 10) / 10,
    unit: 'ns/op',
    target: '< 1000',
  });
  for (const rules of [100, 100_000]) {
    const { nsPerOp, compileMs } = measure(rules, 0xbe27 + rules);
    const label = rules.toLocaleString('en-US');
    results.push({
      name: `decideAccess (Deny, ${label} IPv4+IPv6 rules)`,
      value: Math.round(nsPerOp * 10) / 10,
      unit: 'ns/op',
      target: '< 1000',
    });
    results.push({ name: `compile ${label} rules`, value: Math.round(compileMs), unit: 'ms' });
  }
  // End-to-end rule edits against a real server (bench/rule-edits.ts).
  const { benchRuleEdits } = await import('./rule-edits.js');
  results.push(...(await benchRuleEdits()));
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await benchNetworkDecision()) {
    console.log(`${r.name}: ${r.value} ${r.unit}${r.target ? ` (target ${r.target})` : ''}`);
  }
}
