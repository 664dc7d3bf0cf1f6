// A path-compressed binary prefix trie (PATRICIA) over address bits, one root per family. A lookup
// visits at most one node per distinct prefix length on the address's path (≤ 33 / 129), however many
// rules there are, and compressing single-child chains keeps memory at ≤ 2 nodes per rule.

import { parseClientAddress, parseIpRuleNetwork, type ClientAddress, type ParsedIpRule } from './address.js';

/** Answers "which rule contains this address" for a fixed, compiled rule set. */
export interface IpMatcher {
  /** Canonical value of the most specific rule containing the address, or undefined. */
  match(address: ClientAddress | string): string | undefined;
  /** Whether any rule contains the address; stops at the first rule on the path. */
  matches(address: ClientAddress | string): boolean;
  /** Number of distinct rules. */
  readonly size: number;
}

class TrieNode {
  zero: TrieNode | null = null;
  one: TrieNode | null = null;
  constructor(
    // Only the first `length` bits of `key` are meaningful; it may be shared with a longer rule's bytes.
    readonly key: Uint8Array,
    readonly length: number,
    public rule: string | undefined,
  ) {}
}

function bitAt(bytes: Uint8Array, index: number): number {
  return (bytes[index >>> 3]! >>> (7 - (index & 7))) & 1;
}

/** Compares bits [from, to) of two byte strings; bits before `from` were checked further up the trie. */
function samePrefix(a: Uint8Array, b: Uint8Array, from: number, to: number): boolean {
  if (to <= from) return true;
  const first = from >>> 3;
  const last = (to - 1) >>> 3;
  for (let i = first; i <= last; i++) {
    let diff = a[i]! ^ b[i]!;
    if (i === first) diff &= 0xff >>> (from & 7);
    if (i === last) diff &= (0xff << (7 - ((to - 1) & 7))) & 0xff;
    if (diff !== 0) return false;
  }
  return true;
}

function commonPrefixLength(a: Uint8Array, b: Uint8Array, limit: number): number {
  const bytes = (limit + 7) >>> 3;
  for (let i = 0; i < bytes; i++) {
    const diff = a[i]! ^ b[i]!;
    if (diff !== 0) return Math.min(limit, i * 8 + Math.clz32(diff) - 24);
  }
  return limit;
}

function child(node: TrieNode, bit: number): TrieNode | null {
  return bit === 0 ? node.zero : node.one;
}

function setChild(node: TrieNode, bit: number, value: TrieNode): void {
  if (bit === 0) node.zero = value;
  else node.one = value;
}

/** Inserts a rule; returns false when the same prefix was already present. */
function insert(root: TrieNode, key: Uint8Array, length: number, rule: string): boolean {
  let node = root;
  while (true) {
    if (node.length === length) {
      const added = node.rule === undefined;
      node.rule = rule;
      return added;
    }
    const bit = bitAt(key, node.length);
    const next = child(node, bit);
    if (next === null) {
      setChild(node, bit, new TrieNode(key, length, rule));
      return true;
    }
    const common = commonPrefixLength(key, next.key, Math.min(length, next.length));
    if (common === next.length) {
      node = next;
      continue;
    }
    // The new prefix and `next` diverge (or the new one is shorter): put a node at the fork.
    const fork = new TrieNode(key, common, common === length ? rule : undefined);
    setChild(fork, bitAt(next.key, common), next);
    if (common !== length) setChild(fork, bitAt(key, common), new TrieNode(key, length, rule));
    setChild(node, bit, fork);
    return true;
  }
}

function lookup(root: TrieNode, bytes: Uint8Array, longest: boolean): string | undefined {
  const bits = bytes.length * 8;
  let best: string | undefined;
  let node: TrieNode | null = root;
  let checked = 0;
  while (node !== null) {
    if (!samePrefix(bytes, node.key, checked, node.length)) break;
    checked = node.length;
    if (node.rule !== undefined) {
      best = node.rule;
      if (!longest) break;
    }
    if (checked === bits) break;
    node = bitAt(bytes, checked) === 0 ? node.zero : node.one;
  }
  return best;
}

class TrieMatcher implements IpMatcher {
  private readonly v4 = new TrieNode(new Uint8Array(4), 0, undefined);
  private readonly v6 = new TrieNode(new Uint8Array(16), 0, undefined);
  size = 0;

  add(rule: ParsedIpRule | string): void {
    const parsed = parseIpRuleNetwork(typeof rule === 'string' ? rule : rule.value);
    const root = parsed.family === 4 ? this.v4 : this.v6;
    if (insert(root, parsed.network, parsed.prefixLength, parsed.value)) this.size++;
  }

  match(address: ClientAddress | string): string | undefined {
    const client = typeof address === 'string' ? parseClientAddress(address) : address;
    if (client === undefined) return undefined;
    return lookup(client.family === 4 ? this.v4 : this.v6, client.bytes, true);
  }

  matches(address: ClientAddress | string): boolean {
    const client = typeof address === 'string' ? parseClientAddress(address) : address;
    if (client === undefined) return false;
    return lookup(client.family === 4 ? this.v4 : this.v6, client.bytes, false) !== undefined;
  }
}

/** Compiles rules once into a matcher whose lookup cost does not grow with the rule count. */
export function compileIpRules(rules: readonly (ParsedIpRule | string)[]): IpMatcher {
  const matcher = new TrieMatcher();
  // Rules are re-read from their value, so ones loaded back from storage as plain JSON work too.
  for (const rule of rules) matcher.add(rule);
  return matcher;
}
