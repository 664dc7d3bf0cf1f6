// IP addresses and CIDR rules. Rules are parsed strictly (what an owner types is stored and shown back),
// socket addresses leniently (what Node reports is trusted to be an address, only its spelling varies).
// ipaddr.js is deliberately not used here: it reads `::1.2.3.4` as `::ffff:1.2.3.4`, accepts leading
// zeros in embedded IPv4 and keeps zone ids, all of which a rule parser must reject.

/** An address a request came from, in canonical text and network-order bytes (4 or 16). */
export interface ClientAddress {
  readonly family: 4 | 6;
  readonly text: string;
  readonly bytes: Uint8Array;
}

/** A validated IP rule; `value` is its canonical spelling, the one stored and compared. */
export interface ParsedIpRule {
  value: string;
  family: 4 | 6;
  prefixLength: number;
  hostBitsCleared: boolean;
  /**
   * An IPv6 range shorter than /96 that contains ::ffff:0:0/96 (e.g. `::/0`, `::/80`): since an IPv4
   * client is matched as if it were ::ffff:a.b.c.d, such a rule matches every IPv4 client too.
   */
  coversAllIPv4: boolean;
}

/** A rule together with its network bytes, for building matchers inside this layer. */
export interface ParsedIpRuleNetwork extends ParsedIpRule {
  network: Uint8Array;
}

/** Raised for any rule a registry owner must fix; `value` is the offending input, verbatim. */
export class InvalidIpRuleError extends Error {
  readonly value: string;
  constructor(value: string, message: string) {
    super(message);
    this.name = 'InvalidIpRuleError';
    this.value = value;
  }
}

// Longest valid rule is a full IPv6 with embedded IPv4 and '/128' (49 chars); anything longer is not one.
const MAX_TEXT = 64;
const IPV6_CHARS = /^[0-9A-Fa-f:.]+$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const DECIMAL = /^[0-9]+$/;

/** Quotes a value for an error message without letting a huge input flood logs or responses. */
function quote(value: string): string {
  return `'${value.length > MAX_TEXT ? `${value.slice(0, MAX_TEXT)}…` : value}'`;
}

function invalid(value: string, family: 4 | 6 | undefined, reason: string): InvalidIpRuleError {
  const kind = family === 4 ? 'IPv4' : family === 6 ? 'IPv6' : 'IPv4 or IPv6';
  return new InvalidIpRuleError(
    value,
    `${quote(value)} is not a valid ${kind} address or CIDR range: ${reason}`,
  );
}

/** Parses dotted-quad IPv4, returning a reason string instead of throwing so callers pick the error. */
function parseIPv4Bytes(text: string): Uint8Array | string {
  const parts = text.split('.');
  if (parts.length !== 4) return 'expected four decimal octets separated by dots';
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!DECIMAL.test(part)) return 'expected four decimal octets separated by dots';
    // Leading zeros are read as octal by some tools (inet_aton), so the same text could mean two hosts.
    if (part.length > 1 && part[0] === '0') return `octet '${part}' has a leading zero`;
    const n = Number(part);
    if (n > 255) return `octet ${part} is out of range 0-255`;
    bytes[i] = n;
  }
  return bytes;
}

function parseGroups(parts: string[], allowIPv4Last: boolean, out: number[]): string | undefined {
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '') return 'empty group (a single leading or trailing colon)';
    if (part.includes('.')) {
      if (!allowIPv4Last || i !== parts.length - 1) return 'embedded IPv4 is allowed only as the last part';
      const v4 = parseIPv4Bytes(part);
      if (typeof v4 === 'string') return `embedded IPv4: ${v4}`;
      out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else if (HEX_GROUP.test(part)) {
      out.push(parseInt(part, 16));
    } else {
      return `group '${part}' is not one to four hexadecimal digits`;
    }
  }
  return undefined;
}

/** Parses IPv6 text without zone id, returning a reason string on failure. */
function parseIPv6Bytes(text: string): Uint8Array | string {
  if (text.includes('%')) return 'zone ids are not allowed';
  if (!IPV6_CHARS.test(text)) return 'only hexadecimal digits, colons and dots are allowed';
  const gap = text.indexOf('::');
  if (gap !== text.lastIndexOf('::')) return "'::' may appear only once";
  const head: number[] = [];
  const tail: number[] = [];
  let reason: string | undefined;
  if (gap < 0) {
    reason = parseGroups(text.split(':'), true, head);
    if (reason === undefined && head.length !== 8) reason = 'expected eight groups';
  } else {
    const before = text.slice(0, gap);
    const after = text.slice(gap + 2);
    reason = before === '' ? undefined : parseGroups(before.split(':'), false, head);
    if (reason === undefined && after !== '') reason = parseGroups(after.split(':'), true, tail);
    if (reason === undefined && head.length + tail.length > 7) reason = "too many groups around '::'";
  }
  if (reason !== undefined) return reason;
  const bytes = new Uint8Array(16);
  const write = (group: number, index: number): void => {
    bytes[index * 2] = group >>> 8;
    bytes[index * 2 + 1] = group & 0xff;
  };
  head.forEach((g, i) => write(g, i));
  tail.forEach((g, i) => write(g, 8 - tail.length + i));
  return bytes;
}

/** ::ffff:0:0, the start of the IPv4-mapped range. */
const MAPPED_PREFIX = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]);

/** Whether the first `length` bits of `bytes` equal those of `network`. */
function prefixOf(bytes: Uint8Array, length: number, network: Uint8Array): boolean {
  for (let i = 0; i < length; i++) {
    const shift = 7 - (i & 7);
    if (((bytes[i >> 3]! >> shift) & 1) !== ((network[i >> 3]! >> shift) & 1)) return false;
  }
  return true;
}

/** True for ::ffff:0:0/96, the range dual-stack sockets use to carry IPv4 peers. */
function isIPv4Mapped(bytes: Uint8Array): boolean {
  if (bytes.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952 4.2: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/** Canonical text for an address: dotted quad, or RFC 5952 IPv6 (mapped IPv4 in mixed notation). */
export function formatAddress(address: ClientAddress | Uint8Array): string {
  const bytes = address instanceof Uint8Array ? address : address.bytes;
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new TypeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  if (isIPv4Mapped(bytes)) return `::ffff:${formatAddress(bytes.subarray(12))}`;
  return formatIPv6(bytes);
}

function toClientAddress(bytes: Uint8Array): ClientAddress {
  // One family per client: a dual-stack socket must not make an IPv4 peer escape IPv4 rules.
  const v4 = isIPv4Mapped(bytes) ? bytes.slice(12) : bytes;
  return { family: v4.length === 4 ? 4 : 6, text: formatAddress(v4), bytes: v4 };
}

/** Reads an address as a socket or trusted proxy reports it; undefined when it is not an IP address. */
export function parseClientAddress(text: string): ClientAddress | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_TEXT) return undefined;
  let t = text;
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  if (t.includes(':')) {
    // Zone ids only scope link-local addresses to an interface; the address itself is what rules see.
    const zone = t.indexOf('%');
    if (zone >= 0) t = t.slice(0, zone);
    const bytes = parseIPv6Bytes(t);
    return typeof bytes === 'string' ? undefined : toClientAddress(bytes);
  }
  const bytes = parseIPv4Bytes(t);
  return typeof bytes === 'string' ? undefined : toClientAddress(bytes);
}

/** Clears host bits in place and reports whether any were set. */
function clearHostBits(bytes: Uint8Array, prefixLength: number): boolean {
  let cleared = false;
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLength - i * 8));
    const mask = (0xff << (8 - keep)) & 0xff;
    if ((bytes[i]! & ~mask) !== 0) cleared = true;
    bytes[i] = bytes[i]! & mask;
  }
  return cleared;
}

/** Like parseIpRule, but also hands back the network bytes, so matchers need not re-derive them. */
export function parseIpRuleNetwork(value: string): ParsedIpRuleNetwork {
  if (typeof value !== 'string' || value === '') throw invalid(String(value), undefined, 'value is empty');
  if (/\s/.test(value)) throw invalid(value, undefined, 'whitespace is not allowed');
  if (value.length > MAX_TEXT) throw invalid(value, undefined, 'value is too long');
  const slash = value.indexOf('/');
  const addressText = slash < 0 ? value : value.slice(0, slash);
  const family: 4 | 6 | undefined = addressText.includes(':')
    ? 6
    : /^[0-9]/.test(addressText)
      ? 4
      : undefined;
  if (family === undefined)
    throw invalid(value, undefined, 'expected an IP address or CIDR range (hostnames are not allowed)');
  const parsed = family === 4 ? parseIPv4Bytes(addressText) : parseIPv6Bytes(addressText);
  if (typeof parsed === 'string') throw invalid(value, family, parsed);
  const max = family === 4 ? 32 : 128;
  let prefixLength = max;
  if (slash >= 0) {
    const lengthText = value.slice(slash + 1);
    if (!DECIMAL.test(lengthText) || Number(lengthText) > max) {
      throw invalid(value, family, `prefix length must be 0-${max}`);
    }
    if (lengthText.length > 1 && lengthText[0] === '0') {
      throw invalid(value, family, 'prefix length must not have leading zeros');
    }
    prefixLength = Number(lengthText);
  }
  let network = parsed;
  const hostBitsCleared = clearHostBits(network, prefixLength);
  let ruleFamily: 4 | 6 = family;
  if (family === 6 && prefixLength >= 96 && isIPv4Mapped(network)) {
    // Clients in ::ffff:0:0/96 are matched as IPv4, so the rule must live among the IPv4 rules too.
    network = network.slice(12);
    prefixLength -= 96;
    ruleFamily = 4;
  }
  const full = ruleFamily === 4 ? 32 : 128;
  const text = formatAddress(network);
  return {
    value: prefixLength === full ? text : `${text}/${prefixLength}`,
    family: ruleFamily,
    prefixLength,
    hostBitsCleared,
    coversAllIPv4: ruleFamily === 6 && prefixLength < 96 && prefixOf(MAPPED_PREFIX, prefixLength, network),
    network,
  };
}

/** Validates one IP rule as a registry owner typed it and returns its canonical form. */
export function parseIpRule(value: string): ParsedIpRule {
  const { network: _network, ...rule } = parseIpRuleNetwork(value);
  return rule;
}

/** Validates a whole rule list; duplicates are errors because two spellings of one range confuse audits. */
export function normalizeIpRules(values: string[]): { rules: ParsedIpRule[] } {
  const seen = new Map<string, string>();
  const rules: ParsedIpRule[] = [];
  for (const value of values) {
    const rule = parseIpRule(value);
    const first = seen.get(rule.value);
    if (first !== undefined) {
      const same = first === value ? '' : ` (both are ${rule.value})`;
      throw new InvalidIpRuleError(value, `${quote(value)} duplicates the rule ${quote(first)}${same}`);
    }
    seen.set(rule.value, value);
    rules.push(rule);
  }
  return { rules };
}
