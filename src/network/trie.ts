// A path-compressed binary prefix trie (PATRICIA) over address bits, one per family, built from
// objects and then packed into one Int32Array so a lookup touches one cache line per node. A lookup
// starts from a table indexed by the address's top K bits (K ≤ 16, grown with the rule count) that
// holds the best short rule and the subtrie for that slot; what remains is a walk bounded by the
// address length (≤ 32 / 128 bits) and in practice a node or two, whatever the number of rules.

import { parseClientAddress, parseIpRuleNetwork, type ClientAddress, type ParsedIpRule } from './address.js';

/** Answers "which rule contains this address" for a fixed, compiled rule set. */
export interface IpMatcher {
  /** Canonical value of the most specific rule containing the address, or undefined. */
  match(address: ClientAddress | string): string | undefined;
  /** Whether any rule contains the address; stops at the first rule found. */
  matches(address: ClientAddress | string): boolean;
  /** Number of distinct rules. */
  readonly size: number;
  /** The rules it was compiled from, in order (for `recompileIpRules`). */
  readonly sources: readonly string[];
  /** Like `match`, with the rule's prefix length as IPv6 (an IPv4 rule's is 96 + its length). */
  matchWithLength(client: ClientAddress): { value: string; length: number } | undefined;
}

// ---- build: an object trie, easy to insert into ----

class BuildNode {
  zero: BuildNode | null = null;
  one: BuildNode | null = null;
  constructor(
    // Only the first `length` bits of `key` are meaningful; it may be shared with a longer rule's bytes.
    readonly key: Uint8Array,
    readonly length: number,
    public rule: number, // 1-based index into the rule values; 0 = no rule ends here
  ) {}
}

function bitAt(bytes: Uint8Array, index: number): number {
  return (bytes[index >>> 3]! >>> (7 - (index & 7))) & 1;
}

function commonPrefixLength(a: Uint8Array, b: Uint8Array, limit: number): number {
  for (let i = 0; i < (limit + 7) >>> 3; i++) {
    const diff = a[i]! ^ b[i]!;
    if (diff !== 0) return Math.min(limit, i * 8 + Math.clz32(diff) - 24);
  }
  return limit;
}

function setChild(node: BuildNode, bit: number, value: BuildNode): void {
  if (bit === 0) node.zero = value;
  else node.one = value;
}

/** Inserts a prefix; returns the rule index already stored for it, or 0 when it is new. */
function insert(root: BuildNode, key: Uint8Array, length: number, rule: number): number {
  let node = root;
  while (true) {
    if (node.length === length) {
      if (node.rule === 0) node.rule = rule;
      return node.rule === rule ? 0 : node.rule;
    }
    const bit = bitAt(key, node.length);
    const next = bit === 0 ? node.zero : node.one;
    if (next === null) {
      setChild(node, bit, new BuildNode(key, length, rule));
      return 0;
    }
    const common = commonPrefixLength(key, next.key, Math.min(length, next.length));
    if (common === next.length) {
      node = next;
      continue;
    }
    // The new prefix and `next` diverge (or the new one is shorter): put a node at the fork.
    const fork = new BuildNode(key, common, common === length ? rule : 0);
    setChild(fork, bitAt(next.key, common), next);
    if (common !== length) setChild(fork, bitAt(key, common), new BuildNode(key, length, rule));
    setChild(node, bit, fork);
    return 0;
  }
}

// ---- packed form: [child0, child1, length | rule << 8, key words...] per node; -1 = no child ----

interface PackedTrie {
  readonly words: number; // 1 for IPv4, 4 for IPv6
  readonly nodes: Int32Array;
  readonly slotBits: number;
  readonly slotNode: Int32Array; // offset of the first node of length ≥ slotBits in the slot, or -1
  readonly slotRule: Int32Array; // best rule shorter than slotBits covering the slot, or 0
}

function word(bytes: Uint8Array, i: number): number {
  return (bytes[i * 4]! << 24) | (bytes[i * 4 + 1]! << 16) | (bytes[i * 4 + 2]! << 8) | bytes[i * 4 + 3]!;
}

function pack(root: BuildNode, words: number, count: number): PackedTrie {
  const stride = 3 + words;
  const order: BuildNode[] = [];
  const offsets = new Map<BuildNode, number>();
  const stack: BuildNode[] = [root];
  while (stack.length > 0) {
    const node = stack.pop()!;
    offsets.set(node, order.length * stride);
    order.push(node);
    if (node.one) stack.push(node.one);
    if (node.zero) stack.push(node.zero); // zero first in memory: a parent and its first child share lines
  }
  const nodes = new Int32Array(order.length * stride);
  for (const node of order) {
    const at = offsets.get(node)!;
    nodes[at] = node.zero ? offsets.get(node.zero)! : -1;
    nodes[at + 1] = node.one ? offsets.get(node.one)! : -1;
    nodes[at + 2] = node.length | (node.rule << 8);
    for (let w = 0; w < words; w++) nodes[at + 3 + w] = word(node.key, w);
  }
  // One slot per ~rule keeps the table no bigger than the trie it shortcuts.
  const slotBits = Math.min(16, 32 - Math.clz32(count));
  const slotNode = new Int32Array(1 << slotBits).fill(-1);
  const slotRule = new Int32Array(1 << slotBits);
  const fill = (node: BuildNode, best: number): void => {
    const top = slotBits === 0 ? 0 : word(node.key, 0) >>> (32 - slotBits);
    if (node.length >= slotBits) {
      slotNode[top] = offsets.get(node)!;
      slotRule[top] = best;
      return;
    }
    const span = slotBits - node.length;
    const first = (top >>> span) << span;
    const rule = node.rule || best;
    slotRule.fill(rule, first, first + (1 << span));
    if (node.zero) fill(node.zero, rule);
    if (node.one) fill(node.one, rule);
  };
  fill(root, 0);
  return { words, nodes, slotBits, slotNode, slotRule };
}

// ---- lookup: numbers only, no allocation ----

const EMPTY = pack(new BuildNode(new Uint8Array(4), 0, 0), 1, 0);

/** Whether bits [0, length) of the address equal the node's key. */
function prefixMatches(nodes: Int32Array, at: number, length: number, a: Int32Array): boolean {
  let remaining = length;
  for (let w = 0; remaining > 0; w++, remaining -= 32) {
    const diff = a[w]! ^ nodes[at + 3 + w]!;
    if (remaining < 32) return diff >>> (32 - remaining) === 0;
    if (diff !== 0) return false;
  }
  return true;
}

// Address words for the lookup in progress; reused because JavaScript here is single-threaded.
const scratch = new Int32Array(4);

/** 1-based index of the longest (or, if !longest, any) rule containing the address, or 0. */
function lookup(trie: PackedTrie, bytes: Uint8Array, longest: boolean): number {
  const { nodes, words, slotBits } = trie;
  for (let w = 0; w < words; w++) scratch[w] = word(bytes, w);
  const slot = slotBits === 0 ? 0 : scratch[0]! >>> (32 - slotBits);
  let best = trie.slotRule[slot]!;
  if (best !== 0 && !longest) return best;
  const bits = words * 32;
  let at = trie.slotNode[slot]!;
  while (at >= 0) {
    const meta = nodes[at + 2]!;
    const length = meta & 0xff;
    if (!prefixMatches(nodes, at, length, scratch)) break;
    if (meta >>> 8 !== 0) {
      best = meta >>> 8;
      if (!longest) break;
    }
    if (length === bits) break;
    const bit = (scratch[length >>> 5]! >>> (31 - (length & 31))) & 1;
    at = nodes[at + bit]!;
  }
  return best;
}

class PackedMatcher implements IpMatcher {
  constructor(
    private readonly v4: PackedTrie,
    private readonly v6: PackedTrie,
    private readonly values: readonly string[],
    /** Per rule, its prefix length as IPv6. */
    private readonly lengths: readonly number[],
    readonly sources: readonly string[],
  ) {}

  get size(): number {
    return this.values.length;
  }

  matchWithLength(client: ClientAddress): { value: string; length: number } | undefined {
    const rule = lookup(client.family === 4 ? this.v4 : this.v6, client.bytes, true);
    return rule === 0 ? undefined : { value: this.values[rule - 1]!, length: this.lengths[rule - 1]! };
  }

  match(address: ClientAddress | string): string | undefined {
    const client = typeof address === 'string' ? parseClientAddress(address) : address;
    if (client === undefined) return undefined;
    const rule = lookup(client.family === 4 ? this.v4 : this.v6, client.bytes, true);
    return rule === 0 ? undefined : this.values[rule - 1];
  }

  matches(address: ClientAddress | string): boolean {
    const client = typeof address === 'string' ? parseClientAddress(address) : address;
    if (client === undefined) return false;
    return lookup(client.family === 4 ? this.v4 : this.v6, client.bytes, false) !== 0;
  }
}

/** Compiles rules once into a matcher whose lookup cost does not grow with the rule count. */
export function compileIpRules(rules: readonly (ParsedIpRule | string)[]): IpMatcher {
  const roots = { 4: new BuildNode(new Uint8Array(4), 0, 0), 6: new BuildNode(new Uint8Array(16), 0, 0) };
  const counts = { 4: 0, 6: 0 };
  const values: string[] = [];
  const lengths: number[] = [];
  // The longest IPv6 rule that covers all of ::ffff:0:0/96, which then matches every IPv4 client.
  let coverIPv4 = { rule: 0, length: -1 };
  for (const rule of rules) {
    if (values.length === (1 << 23) - 1) throw new RangeError('too many IP rules (at most 8,388,607)');
    // Rules are re-read from their value, so ones loaded back from storage as plain JSON work too.
    const parsed = parseIpRuleNetwork(typeof rule === 'string' ? rule : rule.value);
    if (insert(roots[parsed.family], parsed.network, parsed.prefixLength, values.length + 1) === 0) {
      values.push(parsed.value);
      lengths.push(parsed.family === 4 ? parsed.prefixLength + 96 : parsed.prefixLength);
      counts[parsed.family]++;
      if (parsed.coversAllIPv4 && parsed.prefixLength > coverIPv4.length)
        coverIPv4 = { rule: values.length, length: parsed.prefixLength };
    }
  }
  // As IPv6 it is shorter than any IPv4 rule (≥ /96 as IPv6), so it only fills an empty IPv4 root.
  if (coverIPv4.rule !== 0 && roots[4].rule === 0) {
    roots[4].rule = coverIPv4.rule;
    counts[4]++;
  }
  return new PackedMatcher(
    counts[4] === 0 ? EMPTY : pack(roots[4], 1, counts[4]),
    counts[6] === 0 ? EMPTY : pack(roots[6], 4, counts[6]),
    values,
    lengths,
    rules.map((rule) => (typeof rule === 'string' ? rule : rule.value)),
  );
}

/** A packed base plus a small packed overlay of rules appended since: longest match across both. */
class LayeredMatcher implements IpMatcher {
  readonly sources: readonly string[];

  constructor(
    readonly base: IpMatcher,
    private readonly overlay: IpMatcher,
  ) {
    this.sources = [...base.sources, ...overlay.sources];
  }

  get size(): number {
    return this.base.size + this.overlay.size;
  }

  matchWithLength(client: ClientAddress): { value: string; length: number } | undefined {
    const a = this.base.matchWithLength(client);
    const b = this.overlay.matchWithLength(client);
    return !b || (a && a.length >= b.length) ? a : b;
  }

  match(address: ClientAddress | string): string | undefined {
    const client = typeof address === 'string' ? parseClientAddress(address) : address;
    return client && this.matchWithLength(client)?.value;
  }

  matches(address: ClientAddress | string): boolean {
    return this.base.matches(address) || this.overlay.matches(address);
  }
}

/** Appended rules kept in the overlay before the whole set is packed again. */
const MAX_OVERLAY_RULES = 2_048;

/**
 * Compiles `rules`, reusing `previous` when they only append to the rules it was compiled from (the
 * usual edit: one rule added): only the new rules are packed, into a small overlay, so an edit costs
 * what it adds rather than a full recompile. Any other change compiles from scratch.
 */
export function recompileIpRules(previous: IpMatcher | undefined, rules: readonly string[]): IpMatcher {
  const base = previous instanceof LayeredMatcher ? previous.base : previous;
  if (!base || base.sources.length === 0 || rules.length < base.sources.length) return compileIpRules(rules);
  for (let i = 0; i < base.sources.length; i++)
    if (base.sources[i] !== rules[i]) return compileIpRules(rules);
  const added = rules.length - base.sources.length;
  if (added === 0) return base;
  if (added > Math.max(MAX_OVERLAY_RULES, base.sources.length / 8)) return compileIpRules(rules);
  return new LayeredMatcher(base, compileIpRules(rules.slice(base.sources.length)));
}
