// HAProxy PROXY protocol v1 and v2 (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt),
// parsed from whatever bytes have arrived so far. The listener calls this until it stops answering
// 'incomplete', then strips `consumed` bytes; it must only do so for connections from trusted proxies.

import { formatAddress, parseClientAddress } from './address.js';

/** An endpoint as carried in a PROXY header. */
export interface ProxyEndpoint {
  address: string;
  port: number;
}

/** Result of looking at the start of a connection's byte stream. */
export type ProxyHeaderResult =
  | { status: 'incomplete' }
  | { status: 'ok'; consumed: number; source?: ProxyEndpoint; destination?: ProxyEndpoint }
  | { status: 'invalid'; reason: string };

/** The 12 bytes every v2 header starts with; chosen by HAProxy never to be valid HTTP or TLS. */
export const PROXY_V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V1_MAX_LENGTH = 107;
const V2_HEADER_LENGTH = 16;
const INCOMPLETE = { status: 'incomplete' } as const;

function invalid(reason: string): ProxyHeaderResult {
  return { status: 'invalid', reason };
}

/** True when `buf` could still grow into `prefix` (or already starts with it). */
function agreesWith(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.subarray(0, n).equals(prefix.subarray(0, n));
}

function parseV1Port(text: string | undefined): number | undefined {
  if (text === undefined || !/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

function parseV1(buf: Buffer): ProxyHeaderResult {
  const end = buf.subarray(0, V1_MAX_LENGTH).indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    if (buf.subarray(0, V1_MAX_LENGTH).includes(0x0a)) return invalid('v1 header has a bare line feed');
    return buf.length >= V1_MAX_LENGTH ? invalid('v1 header longer than 107 bytes') : INCOMPLETE;
  }
  const line = buf.subarray(0, end).toString('latin1');
  const consumed = end + 2;
  const fields = line.split(' ');
  const protocol = fields[1];
  // UNKNOWN: the proxy could not tell (e.g. a health check); the rest of the line is to be ignored.
  if (protocol === 'UNKNOWN') return { status: 'ok', consumed };
  if (protocol !== 'TCP4' && protocol !== 'TCP6')
    return invalid(`v1 protocol '${protocol ?? ''}' is unknown`);
  if (fields.length !== 6) return invalid('v1 header must have exactly six space-separated fields');
  const family = protocol === 'TCP4' ? 4 : 6;
  const source = parseClientAddress(fields[2]!);
  const destination = parseClientAddress(fields[3]!);
  // The raw text is checked for family too: parseClientAddress folds ::ffff:a.b.c.d into IPv4.
  const rightFamily = (text: string): boolean =>
    family === 4 ? /^[0-9.]+$/.test(text) : /^[0-9A-Fa-f:.]+$/.test(text) && text.includes(':');
  if (!source || !destination || !rightFamily(fields[2]!) || !rightFamily(fields[3]!)) {
    return invalid(`v1 addresses are not valid ${protocol} addresses`);
  }
  const sourcePort = parseV1Port(fields[4]);
  const destinationPort = parseV1Port(fields[5]);
  if (sourcePort === undefined || destinationPort === undefined) return invalid('v1 ports must be 0-65535');
  return {
    status: 'ok',
    consumed,
    source: { address: source.text, port: sourcePort },
    destination: { address: destination.text, port: destinationPort },
  };
}

function validTlvs(tlvs: Buffer): boolean {
  let offset = 0;
  while (offset < tlvs.length) {
    if (offset + 3 > tlvs.length) return false;
    offset += 3 + tlvs.readUInt16BE(offset + 1);
  }
  return offset === tlvs.length;
}

function parseV2(buf: Buffer): ProxyHeaderResult {
  if (buf.length < V2_HEADER_LENGTH) return INCOMPLETE;
  const versionCommand = buf[12]!;
  if (versionCommand >> 4 !== 2) return invalid(`v2 version ${versionCommand >> 4} is not supported`);
  const command = versionCommand & 0x0f;
  if (command > 1) return invalid(`v2 command ${command} is unknown`);
  const familyTransport = buf[13]!;
  const family = familyTransport >> 4;
  const transport = familyTransport & 0x0f;
  if (family > 3 || transport > 2 || (family === 0) !== (transport === 0)) {
    return invalid(`v2 family/transport 0x${familyTransport.toString(16).padStart(2, '0')} is unknown`);
  }
  const length = buf.readUInt16BE(14);
  const consumed = V2_HEADER_LENGTH + length;
  if (buf.length < consumed) return INCOMPLETE;
  const body = buf.subarray(V2_HEADER_LENGTH, consumed);
  // LOCAL: the proxy's own connection (health check); addresses, if any, are to be ignored.
  if (command === 0) return { status: 'ok', consumed };
  const addressLength = family === 1 ? 12 : family === 2 ? 36 : family === 3 ? 216 : 0;
  if (body.length < addressLength) return invalid('v2 address block is shorter than its family requires');
  if (!validTlvs(body.subarray(addressLength))) return invalid('v2 TLVs overrun the header');
  if (family !== 1 && family !== 2) return { status: 'ok', consumed };
  const size = family === 1 ? 4 : 16;
  // Through text so that ::ffff:a.b.c.d comes out as IPv4, exactly as a socket peer would.
  const address = (offset: number): string =>
    parseClientAddress(formatAddress(body.subarray(offset, offset + size)))!.text;
  return {
    status: 'ok',
    consumed,
    source: { address: address(0), port: body.readUInt16BE(2 * size) },
    destination: { address: address(size), port: body.readUInt16BE(2 * size + 2) },
  };
}

/** Parses a PROXY v1 or v2 header at the start of `buf`, or says more bytes are needed. */
export function parseProxyHeader(buf: Buffer): ProxyHeaderResult {
  if (buf.length === 0) return INCOMPLETE;
  if (buf[0] === PROXY_V2_SIGNATURE[0]) {
    if (!agreesWith(buf, PROXY_V2_SIGNATURE)) return invalid('not a PROXY protocol v2 signature');
    return buf.length < PROXY_V2_SIGNATURE.length ? INCOMPLETE : parseV2(buf);
  }
  if (!agreesWith(buf, V1_PREFIX)) return invalid('not a PROXY protocol header');
  return buf.length < V1_PREFIX.length ? INCOMPLETE : parseV1(buf);
}

/** What encodeProxyV1/V2 put on the wire; addresses are text in either family. */
export interface ProxyHeaderSpec {
  source?: ProxyEndpoint;
  destination?: ProxyEndpoint;
}

function endpoints(spec: ProxyHeaderSpec): { source: ProxyEndpoint; destination: ProxyEndpoint } | undefined {
  if (!spec.source && !spec.destination) return undefined;
  if (!spec.source || !spec.destination) throw new TypeError('source and destination go together');
  return { source: spec.source, destination: spec.destination };
}

/** Builds a v1 header (UNKNOWN when no addresses are given), as a proxy in front of Berth would. */
export function encodeProxyV1(spec: ProxyHeaderSpec = {}): Buffer {
  const ends = endpoints(spec);
  if (!ends) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const { source, destination } = ends;
  const protocol = source.address.includes(':') ? 'TCP6' : 'TCP4';
  const line = `PROXY ${protocol} ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`;
  return Buffer.from(line, 'latin1');
}

/** Builds a v2 header: LOCAL without addresses, PROXY with them; `tlvs` are appended verbatim. */
export function encodeProxyV2(
  spec: ProxyHeaderSpec & { command?: 'LOCAL' | 'PROXY'; tlvs?: Buffer } = {},
): Buffer {
  const ends = endpoints(spec);
  const command = spec.command ?? (ends ? 'PROXY' : 'LOCAL');
  let addresses = Buffer.alloc(0);
  let familyTransport = 0x00;
  if (ends) {
    // Keep the family as written: a v6 header carrying ::ffff:a.b.c.d is something real proxies send.
    const bytes = (text: string, v6: boolean): Buffer => {
      const parsed = parseClientAddress(text);
      if (!parsed) throw new TypeError(`'${text}' is not an IP address`);
      if (!v6) return Buffer.from(parsed.bytes);
      if (parsed.family === 6) return Buffer.from(parsed.bytes);
      return Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), parsed.bytes]);
    };
    const v6 = ends.source.address.includes(':') || ends.destination.address.includes(':');
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(ends.source.port, 0);
    ports.writeUInt16BE(ends.destination.port, 2);
    addresses = Buffer.concat([bytes(ends.source.address, v6), bytes(ends.destination.address, v6), ports]);
    familyTransport = v6 ? 0x21 : 0x11;
  }
  const body = Buffer.concat([addresses, spec.tlvs ?? Buffer.alloc(0)]);
  const header = Buffer.alloc(4);
  header[0] = 0x20 | (command === 'PROXY' ? 1 : 0);
  header[1] = familyTransport;
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([PROXY_V2_SIGNATURE, header, body]);
}
