// Who is the client? The socket peer, unless that peer is a proxy we trust; then the proxy's headers
// are read right to left, because each proxy appends what it saw and only the entries added by trusted
// proxies are believable. Anything a client wrote itself sits to the left of the first untrusted hop.

import { parseClientAddress, type ClientAddress } from './address.js';
import type { IpMatcher } from './trie.js';

/** What the HTTP layer knows about a connection when it asks who the client is. */
export interface ClientAddressInput {
  /** Socket remote address (or the PROXY protocol source, once the listener has checked its peer). */
  peer: string;
  forwarded?: string | string[];
  xForwardedFor?: string | string[];
  trustedProxies: IpMatcher;
}

const PORT = /^[0-9]{1,5}$/;
const OBFUSCATED_PORT = /^_[A-Za-z0-9._-]+$/;

/** Splits on a delimiter outside double-quoted strings (RFC 7230 quoted-string, with backslash escapes). */
function splitOutsideQuotes(text: string, delimiter: string): string[] | undefined {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted && c === '\\') {
      current += c + (text[i + 1] ?? '');
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (!quoted && c === delimiter) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  if (quoted) return undefined;
  parts.push(current);
  return parts;
}

function unquote(value: string): string | undefined {
  if (!value.startsWith('"')) return value;
  if (value.length < 2 || !value.endsWith('"')) return undefined;
  return value.slice(1, -1).replace(/\\(.)/g, '$1');
}

function validPort(port: string): boolean {
  return (PORT.test(port) && Number(port) <= 65535) || OBFUSCATED_PORT.test(port);
}

/** Reads an RFC 7239 node ("192.0.2.1", "192.0.2.1:80", "[2001:db8::1]:4711"); `unknown`/obfuscated → undefined. */
function parseNode(node: string): ClientAddress | undefined {
  if (node.startsWith('[')) {
    const close = node.indexOf(']');
    if (close < 0) return undefined;
    const rest = node.slice(close + 1);
    if (rest !== '' && !(rest.startsWith(':') && validPort(rest.slice(1)))) return undefined;
    const address = parseClientAddress(node.slice(1, close));
    // An IPv6 node must be bracketed; a bracketed IPv4 one is malformed.
    return address && node.slice(1, close).includes(':') ? address : undefined;
  }
  const colon = node.indexOf(':');
  if (colon >= 0 && !validPort(node.slice(colon + 1))) return undefined;
  const host = colon < 0 ? node : node.slice(0, colon);
  if (host.includes(':')) return undefined;
  return parseClientAddress(host);
}

/** The `for=` nodes of a Forwarded header, left to right; undefined marks an unusable element. */
function forwardedChain(header: string): (ClientAddress | undefined)[] {
  const elements = splitOutsideQuotes(header, ',');
  if (elements === undefined) return [undefined];
  return elements.map((element) => {
    let forValue: string | undefined;
    const pairs = splitOutsideQuotes(element, ';') ?? [];
    for (const pair of pairs) {
      const eq = pair.indexOf('=');
      if (eq < 0) return undefined;
      if (pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
      if (forValue !== undefined) return undefined; // two for= in one element: ambiguous
      forValue = pair.slice(eq + 1).trim();
    }
    const node = forValue === undefined ? undefined : unquote(forValue);
    return node === undefined ? undefined : parseNode(node);
  });
}

/** X-Forwarded-For entries, left to right; some proxies (Azure Application Gateway) append a port. */
function xForwardedForChain(header: string): (ClientAddress | undefined)[] {
  return header.split(',').map((raw) => {
    const entry = raw.trim();
    return (
      parseClientAddress(entry) ??
      (entry.includes('.') || entry.startsWith('[') ? parseNode(entry) : undefined)
    );
  });
}

function joinHeader(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value.join(',') : value;
  return text === undefined || text.trim() === '' ? undefined : text;
}

/** Decides which address network rules apply to; proxy headers count only from a trusted peer. */
export function resolveClientAddress(input: ClientAddressInput): ClientAddress {
  const peer = parseClientAddress(input.peer);
  if (peer === undefined) throw new TypeError(`peer address '${input.peer}' is not an IP address`);
  if (!input.trustedProxies.matches(peer)) return peer;
  const forwarded = joinHeader(input.forwarded);
  const xForwardedFor = joinHeader(input.xForwardedFor);
  const chain =
    forwarded !== undefined
      ? forwardedChain(forwarded)
      : xForwardedFor !== undefined
        ? xForwardedForChain(xForwardedFor)
        : [];
  let current = peer;
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = chain[i];
    // A hop we cannot read breaks the chain of trust: nothing to its left can be attributed to anyone.
    if (hop === undefined) return current;
    current = hop;
    if (!input.trustedProxies.matches(hop)) return hop;
  }
  return current;
}
