import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import ipaddr from 'ipaddr.js';
import fc from 'fast-check';
import {
  InvalidIpRuleError,
  formatAddress,
  normalizeIpRules,
  parseClientAddress,
  parseIpRule,
} from '../../../src/network/index.js';

function rejects(value: string, reason: RegExp, family = /IPv4|IPv6/): void {
  assert.throws(
    () => parseIpRule(value),
    (error: unknown) => {
      assert.ok(
        error instanceof InvalidIpRuleError,
        `expected InvalidIpRuleError for ${JSON.stringify(value)}`,
      );
      assert.equal(error.value, value);
      assert.ok(error.message.startsWith(`'${value}' is not a valid `), error.message);
      assert.match(error.message, family);
      assert.match(error.message, reason);
      return true;
    },
  );
}

describe('parseIpRule rejections', () => {
  test('names the value and the reason, in the documented shape', () => {
    assert.throws(() => parseIpRule('1.2.3.4/33'), {
      name: 'InvalidIpRuleError',
      message: "'1.2.3.4/33' is not a valid IPv4 address or CIDR range: prefix length must be 0-32",
    });
  });

  const cases: [string, RegExp, RegExp?][] = [
    ['300.1.1.1', /octet 300 is out of range 0-255/, /IPv4/],
    ['1.2.3.256', /octet 256/, /IPv4/],
    ['1.2.3.4/33', /prefix length must be 0-32/, /IPv4/],
    ['1.2.3.4/-1', /prefix length must be 0-32/, /IPv4/],
    ['1.2.3.4/', /prefix length must be 0-32/, /IPv4/],
    ['1.2.3.4/8/8', /prefix length must be 0-32/, /IPv4/],
    ['1.2.3.4/08', /leading zeros/, /IPv4/],
    ['2001:db8::/129', /prefix length must be 0-128/, /IPv6/],
    ['010.1.1.1', /leading zero/, /IPv4/],
    ['1.02.3.4', /leading zero/, /IPv4/],
    ['00.1.1.1', /leading zero/, /IPv4/],
    ['', /empty/],
    ['example.com', /hostnames are not allowed/],
    ['localhost', /hostnames are not allowed/],
    ['fe80::1%eth0', /zone ids are not allowed/, /IPv6/],
    ['fe80::1%1/64', /zone ids are not allowed/, /IPv6/],
    ['1.2.3', /four decimal octets/, /IPv4/],
    ['1.2.3.4.5', /four decimal octets/, /IPv4/],
    ['127.1', /four decimal octets/, /IPv4/],
    ['0x7f.1', /four decimal octets/, /IPv4/],
    ['0x7f.0.0.1', /four decimal octets/, /IPv4/],
    ['2130706433', /four decimal octets/, /IPv4/],
    [' 1.2.3.4', /whitespace/],
    ['1.2.3.4 ', /whitespace/],
    ['1.2.3.4/ 8', /whitespace/],
    ['10.0.0.0\t/8', /whitespace/],
    ['1::2::3', /'::' may appear only once/, /IPv6/],
    [':::', /'::' may appear only once/, /IPv6/],
    ['1:2:3:4:5:6:7', /eight groups/, /IPv6/],
    ['1:2:3:4:5:6:7:8:9', /eight groups/, /IPv6/],
    ['1:2:3:4::5:6:7:8', /too many groups/, /IPv6/],
    [':1:2:3:4:5:6:7', /empty group/, /IPv6/],
    ['1:2:3:4:5:6:7:', /empty group/, /IPv6/],
    ['12345::', /one to four hexadecimal digits/, /IPv6/],
    ['g::1', /hexadecimal digits, colons and dots/, /IPv6/],
    ['[::1]', /hexadecimal digits, colons and dots/, /IPv6/],
    ['::1.2.3.4:5', /embedded IPv4 is allowed only as the last part/, /IPv6/],
    ['::ffff:01.2.3.4', /embedded IPv4: octet '01' has a leading zero/, /IPv6/],
    ['::ffff:1.2.3', /embedded IPv4: expected four/, /IPv6/],
    ['1.2.3.4::', /embedded IPv4 is allowed only as the last part/, /IPv6/],
  ];
  for (const [value, reason, family] of cases) {
    test(`rejects ${JSON.stringify(value)}`, () => rejects(value, reason, family));
  }

  test('truncates a huge value in the message but keeps it whole on the error', () => {
    const value = '1'.repeat(10_000);
    assert.throws(
      () => parseIpRule(value),
      (error: unknown) =>
        error instanceof InvalidIpRuleError && error.value === value && error.message.length < 300,
    );
  });
});

describe('parseIpRule normalisation', () => {
  const cases: [string, string, 4 | 6, number, boolean][] = [
    ['1.2.3.4', '1.2.3.4', 4, 32, false],
    ['1.2.3.4/32', '1.2.3.4', 4, 32, false],
    ['0.0.0.0', '0.0.0.0', 4, 32, false],
    ['0.0.0.0/0', '0.0.0.0/0', 4, 0, false],
    ['255.255.255.255/0', '0.0.0.0/0', 4, 0, true],
    ['10.1.2.3/8', '10.0.0.0/8', 4, 8, true],
    ['10.0.0.0/8', '10.0.0.0/8', 4, 8, false],
    ['192.168.1.129/25', '192.168.1.128/25', 4, 25, true],
    ['192.168.1.128/25', '192.168.1.128/25', 4, 25, false],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1', 6, 128, false],
    ['2001:db8::1/128', '2001:db8::1', 6, 128, false],
    ['2001:0db8:0000::/32', '2001:db8::/32', 6, 32, false],
    ['2001:db8::1/32', '2001:db8::/32', 6, 32, true],
    ['::/0', '::/0', 6, 0, false],
    ['::1', '::1', 6, 128, false],
    ['::', '::', 6, 128, false],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3', 6, 128, false],
    ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4', 6, 128, false],
    ['1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:0', 6, 128, false],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0', 6, 128, false],
    ['1:2:3:4:5:6:0:0', '1:2:3:4:5:6::', 6, 128, false],
    ['fe80::/10', 'fe80::/10', 6, 10, false],
    ['::ffff:1.2.3.4', '1.2.3.4', 4, 32, false],
    ['::FFFF:1.2.3.4', '1.2.3.4', 4, 32, false],
    ['::ffff:102:304', '1.2.3.4', 4, 32, false],
    ['::ffff:10.1.2.3/104', '10.0.0.0/8', 4, 8, true],
    ['::ffff:0:0/96', '0.0.0.0/0', 4, 0, false],
    ['::ffff:0:0/95', '::fffe:0:0/95', 6, 95, true],
    ['::1.2.3.4', '::102:304', 6, 128, false],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304', 6, 128, false],
  ];
  for (const [input, value, family, prefixLength, hostBitsCleared] of cases) {
    test(`${input} → ${value}`, () => {
      const { coversAllIPv4, ...rule } = parseIpRule(input);
      assert.deepEqual(rule, { value, family, prefixLength, hostBitsCleared });
      // IPv6 ranges shorter than /96 that hold ::ffff:0:0/96 hold every IPv4 client too.
      assert.equal(coversAllIPv4, value === '::/0' || value === '::fffe:0:0/95');
    });
  }

  test('canonical values parse to themselves', () => {
    for (const [, value] of cases) assert.equal(parseIpRule(value).value, value);
  });
});

describe('normalizeIpRules', () => {
  test('returns canonical rules in input order', () => {
    const { rules } = normalizeIpRules(['10.1.2.3/8', '2001:DB8::/32', '1.2.3.4/32']);
    assert.deepEqual(
      rules.map((r) => r.value),
      ['10.0.0.0/8', '2001:db8::/32', '1.2.3.4'],
    );
  });

  test('accepts an empty list', () => assert.deepEqual(normalizeIpRules([]), { rules: [] }));

  const duplicates: [string, string][] = [
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['10.0.0.0/8', '10.255.0.1/8'],
    ['1.2.3.4', '1.2.3.4/32'],
    ['1.2.3.4', '::ffff:1.2.3.4'],
    ['2001:db8::1', '2001:0DB8:0:0:0:0:0:1/128'],
  ];
  for (const [first, second] of duplicates) {
    test(`rejects ${second} after ${first}`, () => {
      assert.throws(
        () => normalizeIpRules(['192.0.2.0/24', first, second]),
        (error: unknown) => {
          assert.ok(error instanceof InvalidIpRuleError);
          assert.equal(error.value, second);
          assert.ok(error.message.includes(`'${second}'`) && error.message.includes(`'${first}'`));
          assert.match(error.message, /duplicate/);
          return true;
        },
      );
    });
  }

  test('an invalid rule in the list is reported as itself', () => {
    assert.throws(() => normalizeIpRules(['10.0.0.0/8', '300.0.0.0']), { value: '300.0.0.0' });
  });
});

describe('parseClientAddress', () => {
  const cases: [string, 4 | 6, string][] = [
    ['127.0.0.1', 4, '127.0.0.1'],
    ['::ffff:127.0.0.2', 4, '127.0.0.2'],
    ['::1', 6, '::1'],
    ['fe80::1%eth0', 6, 'fe80::1'],
    ['FE80::1%25', 6, 'fe80::1'],
    ['[2001:db8::1]', 6, '2001:db8::1'],
    ['2001:0db8:0:0:0:0:0:0001', 6, '2001:db8::1'],
  ];
  for (const [text, family, canonical] of cases) {
    test(`reads ${text}`, () => {
      const address = parseClientAddress(text);
      assert.ok(address);
      assert.equal(address.family, family);
      assert.equal(address.text, canonical);
      assert.equal(address.bytes.length, family === 4 ? 4 : 16);
      assert.equal(formatAddress(address), canonical);
    });
  }
  for (const text of [
    '',
    'unknown',
    '_hidden',
    '1.2.3',
    '010.0.0.1',
    '1.2.3.4:80',
    '::1::',
    'x'.repeat(100),
  ]) {
    test(`refuses ${JSON.stringify(text)}`, () => assert.equal(parseClientAddress(text), undefined));
  }
});

describe('formatting properties', () => {
  const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

  test('IPv4 format → parse round-trips', () => {
    fc.assert(
      fc.property(bytes(4), (b) => {
        const text = formatAddress(b);
        assert.deepEqual(parseClientAddress(text)?.bytes, b);
        assert.equal(parseIpRule(text).value, text);
        assert.equal(text, ipaddr.fromByteArray([...b]).toString());
      }),
    );
  });

  test('IPv6 format → parse round-trips and is RFC 5952 (checked against ipaddr.js)', () => {
    // Runs of zeros are what RFC 5952 is about, so make them common.
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
        const b = new Uint8Array(groups.flatMap((g) => [g >> 8, g & 0xff]));
        const text = formatAddress(b);
        const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
        const client = parseClientAddress(text);
        assert.ok(client);
        if (mapped) {
          assert.equal(client.family, 4);
          assert.deepEqual(client.bytes, b.subarray(12));
        } else {
          assert.deepEqual(client.bytes, b);
          assert.equal(text, new ipaddr.IPv6(groups).toRFC5952String());
          assert.equal(parseIpRule(text).value, text);
        }
      }),
    );
  });

  test('generated IPv6 spellings parse to the bytes ipaddr.js reads', () => {
    fc.assert(
      fc.property(fc.ipV6(), (text) => {
        // ipaddr.js reads `::a.b.c.d` as mapped, so give it the embedded IPv4 as hex groups instead.
        const hexOnly = text.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a, b, c, d) =>
          [(+a << 8) | +b, (+c << 8) | +d].map((g) => g.toString(16)).join(':'),
        );
        const expected = new Uint8Array(ipaddr.IPv6.parse(hexOnly).toByteArray());
        const rule = parseIpRule(text);
        const client = parseClientAddress(rule.value);
        assert.ok(client);
        assert.deepEqual(client.bytes, rule.family === 4 ? expected.subarray(12) : expected);
      }),
    );
  });

  test('CIDR format → parse round-trips with host bits cleared', () => {
    const cidr = fc.oneof(
      fc.tuple(bytes(4), fc.integer({ min: 0, max: 32 })),
      fc.tuple(bytes(16), fc.integer({ min: 0, max: 128 })),
    );
    fc.assert(
      fc.property(cidr, ([b, length]) => {
        const rule = parseIpRule(`${formatAddress(b)}/${length}`);
        const again = parseIpRule(rule.value);
        assert.equal(again.value, rule.value);
        assert.equal(again.hostBitsCleared, false);
        assert.equal(again.prefixLength, rule.prefixLength);
        const full = rule.family === 4 ? 32 : 128;
        assert.equal(rule.value.includes('/'), rule.prefixLength !== full);
        const network = parseClientAddress(rule.value.split('/')[0]!)!.bytes;
        // Every host bit is zero, and every network bit is what was given.
        const offset = b.length - network.length;
        for (let bit = 0; bit < network.length * 8; bit++) {
          const got = (network[bit >> 3]! >> (7 - (bit & 7))) & 1;
          const given = (b[offset + (bit >> 3)]! >> (7 - (bit & 7))) & 1;
          assert.equal(got, bit < rule.prefixLength ? given : 0);
        }
      }),
    );
  });
});
