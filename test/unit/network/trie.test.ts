import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  compileIpRules,
  formatAddress,
  parseClientAddress,
  parseIpRule,
} from '../../../src/network/index.js';

describe('compileIpRules', () => {
  const matcher = compileIpRules([
    '10.0.0.0/8',
    '10.1.0.0/16',
    '10.1.2.3',
    '192.168.0.0/24',
    '2001:db8::/32',
    '2001:db8:1::/48',
    '::1',
  ]);

  test('returns the most specific rule', () => {
    assert.equal(matcher.match('10.1.2.3'), '10.1.2.3');
    assert.equal(matcher.match('10.1.2.4'), '10.1.0.0/16');
    assert.equal(matcher.match('10.2.0.1'), '10.0.0.0/8');
    assert.equal(matcher.match('2001:db8:1::5'), '2001:db8:1::/48');
    assert.equal(matcher.match('2001:db8:2::5'), '2001:db8::/32');
    assert.equal(matcher.match('::1'), '::1');
  });

  test('misses outside every rule, including at range edges', () => {
    assert.equal(matcher.match('11.0.0.0'), undefined);
    assert.equal(matcher.match('9.255.255.255'), undefined);
    assert.equal(matcher.match('192.168.1.0'), undefined);
    assert.equal(matcher.match('192.168.0.255'), '192.168.0.0/24');
    assert.equal(matcher.match('2001:db9::'), undefined);
    assert.equal(matcher.match('::2'), undefined);
    assert.equal(matcher.matches('11.0.0.0'), false);
    assert.equal(matcher.matches('10.1.2.3'), true);
  });

  test('IPv4-mapped clients match IPv4 rules; an IPv6 rule covering ::ffff:0:0/96 matches IPv4 clients', () => {
    assert.equal(matcher.match('::ffff:10.1.2.3'), '10.1.2.3');
    // An IPv4 client is ::ffff:a.b.c.d in IPv6, so `::/0` (and `::/80`, which holds it) contain it.
    assert.equal(compileIpRules(['::/0']).match('1.2.3.4'), '::/0');
    assert.equal(compileIpRules(['::/0', '::/80', '::/81']).match('1.2.3.4'), '::/80');
    assert.equal(compileIpRules(['::/0', '10.0.0.0/8']).match('10.1.1.1'), '10.0.0.0/8');
    assert.equal(compileIpRules(['::/0', '0.0.0.0/0']).match('10.1.1.1'), '0.0.0.0/0');
    assert.equal(compileIpRules(['2001:db8::/32', '::1']).match('1.2.3.4'), undefined);
    assert.equal(parseIpRule('::ffff:1.2.3.4/80').value, '::/80');
    assert.equal(parseIpRule('::ffff:1.2.3.4/80').coversAllIPv4, true);
    assert.equal(parseIpRule('::ffff:0:0/95').coversAllIPv4, true);
    assert.equal(parseIpRule('::1:0:0/95').coversAllIPv4, false);
    assert.equal(compileIpRules(['::ffff:0:0/95']).match('192.0.2.1'), '::fffe:0:0/95');
    // IPv4 rules never match IPv6 clients outside the mapped range.
    assert.equal(compileIpRules(['0.0.0.0/0']).match('::1'), undefined);
    assert.equal(compileIpRules(['::ffff:10.0.0.0/104']).match('10.9.9.9'), '10.0.0.0/8');
  });

  test('/0 rules match their whole family', () => {
    const all = compileIpRules(['0.0.0.0/0', '::/0', '10.0.0.0/8']);
    assert.equal(all.match('255.255.255.255'), '0.0.0.0/0');
    assert.equal(all.match('10.0.0.1'), '10.0.0.0/8');
    assert.equal(all.match('ffff::1'), '::/0');
  });

  test('accepts parsed rules, counts distinct rules, ignores unparseable clients', () => {
    const m = compileIpRules([parseIpRule('10.1.2.3/8'), parseIpRule('10.0.0.0/8'), parseIpRule('::1')]);
    assert.equal(m.size, 2);
    assert.equal(compileIpRules([]).size, 0);
    assert.equal(compileIpRules([]).match('1.2.3.4'), undefined);
    assert.equal(m.match('not an address'), undefined);
    assert.equal(m.matches('not an address'), false);
  });

  test('refuses invalid rules at compile time', () => {
    assert.throws(() => compileIpRules(['10.0.0.0/33']), { name: 'InvalidIpRuleError' });
  });
});

// ---- property: the trie agrees with checking every rule's bits directly ----

interface OracleRule {
  family: 4 | 6;
  bytes: Uint8Array;
  length: number;
  text: string;
}

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** Mirrors the documented semantics: a mapped rule (≥ /96 inside ::ffff:0:0/96) is an IPv4 rule. */
function oracleRule(raw: Uint8Array, length: number): OracleRule {
  const text = `${formatAddress(raw)}/${length}`;
  const mapped = raw.length === 16 && length >= 96 && MAPPED.every((b, i) => raw[i] === b);
  if (mapped) return { family: 4, bytes: raw.slice(12), length: length - 96, text };
  return { family: raw.length === 4 ? 4 : 6, bytes: raw, length, text };
}

function bit(b: Uint8Array, i: number): number {
  return (b[i >> 3]! >> (7 - (i & 7))) & 1;
}

/**
 * Whether the rule contains the client, the client written as IPv6 (an IPv4 client as ::ffff:a.b.c.d),
 * and the rule's length in that space (so an IPv4 rule is 96 + its length), for longest-match.
 */
function contains(rule: OracleRule, family: 4 | 6, address: Uint8Array): number | undefined {
  const as6 = (f: 4 | 6, b: Uint8Array, length: number) =>
    f === 4 ? { b: new Uint8Array([...MAPPED, ...b]), length: length + 96 } : { b, length };
  const r = as6(rule.family, rule.bytes, rule.length);
  const c = as6(family, address, 0);
  if (family === 6 && rule.family === 4) return undefined; // c is not in ::ffff:0:0/96 (it would be family 4)
  for (let i = 0; i < r.length; i++) if (bit(r.b, i) !== bit(c.b, i)) return undefined;
  return r.length;
}

const ruleArbitrary = fc.oneof(
  fc.tuple(bytes(4), fc.integer({ min: 0, max: 32 })),
  fc.tuple(bytes(16), fc.integer({ min: 0, max: 128 })),
  // short prefixes overlap a lot, which is where longest-match bugs hide
  fc.tuple(bytes(4), fc.integer({ min: 0, max: 8 })),
  fc.tuple(
    bytes(4).map((b) => new Uint8Array([...MAPPED, ...b])),
    fc.integer({ min: 80, max: 128 }),
  ),
  // short IPv6 ranges from ::, some of which hold the whole IPv4-mapped range
  fc.tuple(fc.constant(new Uint8Array(16)), fc.integer({ min: 0, max: 95 })),
);

/** Clients: random ones, and for each rule one just inside it and one with the first host bit flipped. */
function clientsFor(rules: OracleRule[], noise: Uint8Array[]): Uint8Array[] {
  const clients = noise.map((n, i) => (i % 2 === 0 ? n.slice(0, 4) : n));
  rules.forEach((rule, i) => {
    const n = noise[i % noise.length]!;
    const inside = rule.bytes.slice();
    for (let b = rule.length; b < inside.length * 8; b++) {
      if (bit(n, b % (n.length * 8))) inside[b >> 3]! |= 0x80 >> (b & 7);
    }
    clients.push(inside);
    if (rule.length > 0) {
      const outside = inside.slice();
      outside[(rule.length - 1) >> 3]! ^= 0x80 >> ((rule.length - 1) & 7);
      clients.push(outside);
    }
    if (rule.family === 4) clients.push(new Uint8Array([...MAPPED, ...inside]));
  });
  return clients;
}

/** Compiles the rules and checks every client against a scan of all rules. */
function agreesWithScan(raw: [Uint8Array, number][], noise: Uint8Array[], probedRules = raw.length): void {
  const rules = raw.map(([b, length]) => oracleRule(b, length));
  const matcher = compileIpRules(rules.map((r) => r.text));
  const distinct = new Set(rules.map((r) => parseIpRule(r.text).value));
  assert.equal(matcher.size, distinct.size);
  for (const clientBytes of clientsFor(rules.slice(0, probedRules), noise)) {
    const client = parseClientAddress(formatAddress(clientBytes))!;
    let best: OracleRule | undefined;
    let bestLength = -1;
    for (const rule of rules) {
      const length = contains(rule, client.family, client.bytes);
      if (length !== undefined && length > bestLength) {
        best = rule;
        bestLength = length;
      }
    }
    const expected = best && parseIpRule(best.text).value;
    assert.equal(matcher.match(client), expected, `client ${client.text}`);
    assert.equal(matcher.match(client.text), expected);
    assert.equal(matcher.matches(client), best !== undefined);
  }
}

describe('trie agrees with a brute-force scan', () => {
  test('for "is matched", "which rule" and size, on 0-200 rules', () => {
    fc.assert(
      fc.property(
        fc.array(ruleArbitrary, { minLength: 0, maxLength: 200 }),
        fc.array(bytes(16), { minLength: 1, maxLength: 20 }),
        (raw, noise) => agreesWithScan(raw, noise),
      ),
      { numRuns: 300 },
    );
  });

  test('on large rule sets, where lookups start from a wider slot table', () => {
    fc.assert(
      fc.property(
        fc.array(ruleArbitrary, { minLength: 5_000, maxLength: 80_000 }),
        fc.array(bytes(16), { minLength: 50, maxLength: 50 }),
        (raw, noise) => agreesWithScan(raw, noise, 300),
      ),
      // Shrinking tens of thousands of rules takes far longer than reading the unshrunk counterexample.
      { numRuns: 3, endOnFailure: true },
    );
  });
});
