import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  PROXY_V2_SIGNATURE,
  encodeProxyV1,
  encodeProxyV2,
  parseProxyHeader,
} from '../../../src/network/index.js';

const v4 = {
  source: { address: '192.0.2.1', port: 56324 },
  destination: { address: '198.51.100.2', port: 443 },
};
const v6 = {
  source: { address: '2001:db8::1', port: 4711 },
  destination: { address: '2001:db8::2', port: 5000 },
};
const payload = Buffer.from('GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n');

function v2(versionCommand: number, familyTransport: number, body: Buffer): Buffer {
  const header = Buffer.from([versionCommand, familyTransport, 0, 0]);
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([PROXY_V2_SIGNATURE, header, body]);
}

function tlv(type: number, value: Buffer): Buffer {
  const head = Buffer.from([type, 0, 0]);
  head.writeUInt16BE(value.length, 1);
  return Buffer.concat([head, value]);
}

const valid: [string, Buffer, object][] = [
  ['v1 TCP4', encodeProxyV1(v4), v4],
  ['v1 TCP6', encodeProxyV1(v6), v6],
  ['v1 UNKNOWN', encodeProxyV1(), {}],
  ['v1 UNKNOWN with addresses', Buffer.from('PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n'), {}],
  ['v2 PROXY TCP4', encodeProxyV2(v4), v4],
  ['v2 PROXY TCP6', encodeProxyV2(v6), v6],
  ['v2 LOCAL', encodeProxyV2(), {}],
  ['v2 LOCAL with addresses (ignored)', encodeProxyV2({ ...v4, command: 'LOCAL' }), {}],
  [
    'v2 PROXY TCP4 with TLVs',
    encodeProxyV2({ ...v4, tlvs: Buffer.concat([tlv(0x01, Buffer.from('h2')), tlv(0x04, Buffer.alloc(0))]) }),
    v4,
  ],
  ['v2 PROXY UDP4', v2(0x21, 0x12, encodeProxyV2(v4).subarray(16)), v4],
  ['v2 PROXY AF_UNIX', v2(0x21, 0x31, Buffer.alloc(216)), {}],
  ['v2 PROXY UNSPEC', v2(0x21, 0x00, Buffer.alloc(0)), {}],
];

describe('parseProxyHeader: valid headers', () => {
  for (const [name, header, endpoints] of valid) {
    test(name, () => {
      const result = parseProxyHeader(Buffer.concat([header, payload]));
      assert.deepEqual(result, { status: 'ok', consumed: header.length, ...endpoints });
    });
  }

  test('v1 TCP4 on the wire is what HAProxy sends', () => {
    assert.equal(encodeProxyV1(v4).toString(), 'PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n');
  });

  test('IPv4-mapped addresses in v6 headers come out as IPv4, like socket peers', () => {
    const mapped = {
      source: { address: '::ffff:192.0.2.1', port: 1 },
      destination: { address: '::1', port: 2 },
    };
    for (const header of [encodeProxyV1(mapped), encodeProxyV2(mapped)]) {
      const result = parseProxyHeader(header);
      assert.equal(result.status, 'ok');
      assert.deepEqual(result.status === 'ok' && result.source, { address: '192.0.2.1', port: 1 });
    }
  });

  test('v1 at the 107-byte limit is accepted', () => {
    const full = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const header = Buffer.from(`PROXY TCP6 ${full} ${full} 65535 65535\r\n`);
    assert.equal(header.length, 104);
    assert.equal(parseProxyHeader(header).status, 'ok');
    const unknown = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(107 - 16)}\r\n`);
    assert.equal(unknown.length, 107);
    assert.deepEqual(parseProxyHeader(unknown), { status: 'ok', consumed: 107 });
  });
});

describe('parseProxyHeader: incomplete', () => {
  for (const [name, header] of valid) {
    test(`every proper prefix of ${name} is incomplete`, () => {
      for (let n = 0; n < header.length; n++) {
        assert.deepEqual(parseProxyHeader(header.subarray(0, n)), { status: 'incomplete' }, `prefix ${n}`);
      }
      assert.equal(parseProxyHeader(header).status, 'ok');
    });
  }
});

describe('parseProxyHeader: invalid', () => {
  const body4 = encodeProxyV2(v4).subarray(16);
  const cases: [string, Buffer][] = [
    ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\n\r\n')],
    ['a TLS client hello', Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5])],
    ['one wrong byte', Buffer.from('G')],
    ['lower-case proxy', Buffer.from('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 unknown protocol', Buffer.from('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 UDP4', Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 double space', Buffer.from('PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 missing port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n')],
    ['v1 extra field', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n')],
    ['v1 trailing space', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n')],
    ['v1 bad octet', Buffer.from('PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n')],
    ['v1 leading-zero octet', Buffer.from('PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 hostname', Buffer.from('PROXY TCP4 localhost 5.6.7.8 1 2\r\n')],
    ['v1 TCP4 with IPv6', Buffer.from('PROXY TCP4 ::1 ::2 1 2\r\n')],
    ['v1 TCP4 with mapped IPv6', Buffer.from('PROXY TCP4 ::ffff:1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 TCP6 with IPv4', Buffer.from('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 TCP6 with zone id', Buffer.from('PROXY TCP6 fe80::1%eth0 ::2 1 2\r\n')],
    ['v1 TCP6 with brackets', Buffer.from('PROXY TCP6 [::1] ::2 1 2\r\n')],
    ['v1 port out of range', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n')],
    ['v1 port with leading zero', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n')],
    ['v1 negative port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n')],
    ['v1 bare line feed', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')],
    ['v1 no CRLF within 107 bytes', Buffer.from(`PROXY UNKNOWN ${'x'.repeat(200)}\r\n`)],
    ['v1 CRLF just past 107 bytes', Buffer.from(`PROXY UNKNOWN ${'x'.repeat(107 - 15)}\r\n`)],
    ['v2 signature broken', Buffer.concat([PROXY_V2_SIGNATURE.subarray(0, 11), Buffer.from([0x0b])])],
    ['v2 version 1', v2(0x11, 0x11, body4)],
    ['v2 version 3', v2(0x31, 0x11, body4)],
    ['v2 command 2', v2(0x22, 0x11, body4)],
    ['v2 family 4', v2(0x21, 0x41, body4)],
    ['v2 transport 3', v2(0x21, 0x13, body4)],
    ['v2 AF_INET with UNSPEC transport', v2(0x21, 0x10, body4)],
    ['v2 UNSPEC family with STREAM', v2(0x21, 0x01, body4)],
    ['v2 AF_INET address block too short', v2(0x21, 0x11, body4.subarray(0, 8))],
    ['v2 AF_INET6 address block too short', v2(0x21, 0x21, Buffer.alloc(35))],
    ['v2 AF_UNIX address block too short', v2(0x21, 0x31, Buffer.alloc(100))],
    [
      'v2 TLV overruns the header',
      v2(0x21, 0x11, Buffer.concat([body4, Buffer.from([0x01, 0x00, 0x05, 0x61])])),
    ],
    ['v2 TLV header cut short', v2(0x21, 0x11, Buffer.concat([body4, Buffer.from([0x01, 0x00])]))],
  ];
  for (const [name, input] of cases) {
    test(name, () => {
      const result = parseProxyHeader(input);
      assert.equal(result.status, 'invalid', `${name}: ${JSON.stringify(result)}`);
      assert.ok(result.status === 'invalid' && result.reason.length > 0);
    });
  }

  test('a byte that cannot start any header is refused at once, not waited on', () => {
    for (const first of [0x00, 0x16, 0x47, 0x70]) {
      assert.equal(parseProxyHeader(Buffer.from([first])).status, 'invalid');
    }
  });
});

describe('encoders', () => {
  test('v2 carries the signature, version 2 and the right family', () => {
    const header = encodeProxyV2(v6);
    assert.ok(header.subarray(0, 12).equals(PROXY_V2_SIGNATURE));
    assert.equal(header[12], 0x21);
    assert.equal(header[13], 0x21);
    assert.equal(header.readUInt16BE(14), 36);
    assert.equal(encodeProxyV2()[12], 0x20);
  });

  test('refuse half-specified or unparseable endpoints', () => {
    assert.throws(() => encodeProxyV1({ source: v4.source }), TypeError);
    assert.throws(
      () => encodeProxyV2({ source: { address: 'nope', port: 1 }, destination: v4.destination }),
      TypeError,
    );
  });
});
