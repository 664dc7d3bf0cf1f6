import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileIpRules, resolveClientAddress, type ClientAddressInput } from '../../../src/network/index.js';

const trustedProxies = compileIpRules(['10.0.0.0/8', 'fd00::/8']);

function resolve(input: Omit<ClientAddressInput, 'trustedProxies'>): string {
  return resolveClientAddress({ ...input, trustedProxies }).text;
}

describe('untrusted peer', () => {
  test('is the client, whatever it claims', () => {
    const peer = '203.0.113.5';
    assert.equal(resolve({ peer }), peer);
    assert.equal(resolve({ peer, xForwardedFor: '10.0.0.1' }), peer);
    assert.equal(resolve({ peer, xForwardedFor: ['198.51.100.7', '10.0.0.1'] }), peer);
    assert.equal(resolve({ peer, forwarded: 'for=10.0.0.1' }), peer);
    assert.equal(resolve({ peer, forwarded: 'for="[fd00::1]"', xForwardedFor: '10.0.0.1' }), peer);
  });

  test('reports the canonical form of the socket address', () => {
    assert.equal(resolve({ peer: '::ffff:127.0.0.2' }), '127.0.0.2');
    assert.equal(resolve({ peer: 'fe80::1%eth0' }), 'fe80::1');
    assert.equal(resolveClientAddress({ peer: '::1', trustedProxies }).family, 6);
  });

  test('an unreadable peer is an error, not a guess', () => {
    assert.throws(() => resolve({ peer: 'unknown' }), TypeError);
    assert.throws(() => resolve({ peer: '' }), TypeError);
  });

  test('no header from an untrusted peer ever wins (property)', () => {
    const anyHeader = fc.option(fc.oneof(fc.string(), fc.array(fc.string())), { nil: undefined });
    fc.assert(
      fc.property(fc.ipV4(), anyHeader, anyHeader, (peer, forwarded, xForwardedFor) => {
        fc.pre(!trustedProxies.matches(peer));
        assert.equal(resolve({ peer, forwarded, xForwardedFor }), peer);
      }),
    );
  });
});

describe('trusted proxy with X-Forwarded-For', () => {
  const peer = '10.0.0.1';

  test('one trusted hop: the address it saw', () => {
    assert.equal(resolve({ peer, xForwardedFor: '198.51.100.7' }), '198.51.100.7');
    assert.equal(resolve({ peer: '::ffff:10.0.0.1', xForwardedFor: '198.51.100.7' }), '198.51.100.7');
  });

  test('without headers: the proxy itself', () => {
    assert.equal(resolve({ peer }), peer);
    assert.equal(resolve({ peer, xForwardedFor: '  ' }), peer);
    assert.equal(resolve({ peer, xForwardedFor: [] }), peer);
  });

  test('two trusted hops: the rightmost untrusted entry, spoofed entries to its left ignored', () => {
    assert.equal(resolve({ peer, xForwardedFor: '6.6.6.6, 198.51.100.7, 10.0.0.2' }), '198.51.100.7');
    assert.equal(resolve({ peer, xForwardedFor: '10.0.0.9, 198.51.100.7,10.0.0.2' }), '198.51.100.7');
  });

  test('several header lines are one list, in order', () => {
    assert.equal(resolve({ peer, xForwardedFor: ['6.6.6.6', '198.51.100.7, 10.0.0.2'] }), '198.51.100.7');
    assert.equal(resolve({ peer, xForwardedFor: ['198.51.100.7', '6.6.6.6'] }), '6.6.6.6');
  });

  test('all trusted: the leftmost', () => {
    assert.equal(resolve({ peer, xForwardedFor: '10.0.0.3, 10.0.0.2' }), '10.0.0.3');
    assert.equal(resolve({ peer, xForwardedFor: 'fd00::3, 10.0.0.2' }), 'fd00::3');
  });

  test('ports and IPv6 spellings proxies use', () => {
    assert.equal(resolve({ peer, xForwardedFor: '198.51.100.7:8080' }), '198.51.100.7');
    assert.equal(resolve({ peer, xForwardedFor: '[2001:db8::1]:443' }), '2001:db8::1');
    assert.equal(resolve({ peer, xForwardedFor: '2001:DB8::1' }), '2001:db8::1');
    assert.equal(resolve({ peer, xForwardedFor: '::ffff:198.51.100.7' }), '198.51.100.7');
  });

  test('garbage stops the walk at the last good address', () => {
    assert.equal(resolve({ peer, xForwardedFor: '198.51.100.7, unknown' }), peer);
    assert.equal(resolve({ peer, xForwardedFor: '198.51.100.7, 10.0.0.2, garbage' }), peer);
    assert.equal(resolve({ peer, xForwardedFor: '198.51.100.7, garbage, 10.0.0.2' }), '10.0.0.2');
    assert.equal(resolve({ peer, xForwardedFor: 'garbage, 198.51.100.7' }), '198.51.100.7');
    assert.equal(resolve({ peer, xForwardedFor: '198.51.100.7,,10.0.0.2' }), '10.0.0.2');
    assert.equal(resolve({ peer, xForwardedFor: '198.51.100.7:99999' }), peer);
    assert.equal(resolve({ peer, xForwardedFor: '010.0.0.1' }), peer);
  });
});

describe('trusted proxy with Forwarded (RFC 7239)', () => {
  const peer = 'fd00::1';

  test('for= with quoted IPv6 and ports', () => {
    assert.equal(resolve({ peer, forwarded: 'for="[2001:db8:cafe::17]:4711"' }), '2001:db8:cafe::17');
    assert.equal(resolve({ peer, forwarded: 'for="[2001:db8:cafe::17]"' }), '2001:db8:cafe::17');
    assert.equal(resolve({ peer, forwarded: 'for=192.0.2.60;proto=http;by=203.0.113.43' }), '192.0.2.60');
    assert.equal(resolve({ peer, forwarded: 'For="192.0.2.43:47011"' }), '192.0.2.43');
    assert.equal(resolve({ peer, forwarded: 'proto=https; FOR=192.0.2.43' }), '192.0.2.43');
    assert.equal(resolve({ peer, forwarded: 'for="[2001:db8::1]:_port"' }), '2001:db8::1');
  });

  test('chains are walked right to left past trusted hops', () => {
    const forwarded = 'for=6.6.6.6, for=192.0.2.43, for="[fd00::2]";by=10.0.0.1';
    assert.equal(resolve({ peer, forwarded }), '192.0.2.43');
    assert.equal(
      resolve({ peer, forwarded: ['for=6.6.6.6', 'for=192.0.2.43', 'for=10.0.0.2'] }),
      '192.0.2.43',
    );
    assert.equal(resolve({ peer, forwarded: 'for=10.0.0.3, for=10.0.0.2' }), '10.0.0.3');
  });

  test('a comma inside a quoted value does not split elements', () => {
    assert.equal(resolve({ peer, forwarded: 'for=192.0.2.43;ext="a,b"' }), '192.0.2.43');
  });

  test('preferred over X-Forwarded-For; an empty one is ignored', () => {
    assert.equal(resolve({ peer, forwarded: 'for=192.0.2.43', xForwardedFor: '198.51.100.7' }), '192.0.2.43');
    assert.equal(resolve({ peer, forwarded: '', xForwardedFor: '198.51.100.7' }), '198.51.100.7');
  });

  test('unknown, obfuscated and malformed nodes stop the walk', () => {
    const cases: [string, string][] = [
      ['for=192.0.2.43, for=unknown', peer],
      ['for=192.0.2.43, for=_hidden', peer],
      ['for=192.0.2.43, for=_hidden, for=10.0.0.2', '10.0.0.2'],
      ['for=unknown, for=10.0.0.2', '10.0.0.2'],
      ['for=2001:db8::1', peer], // IPv6 must be quoted and bracketed
      ['for="2001:db8::1"', peer],
      ['for="[2001:db8::1"', peer],
      ['for="[1.2.3.4]"', peer],
      ['for="192.0.2.43', peer], // unterminated quote
      ['for=192.0.2.43;for=198.51.100.7', peer], // two for= in one element
      ['proto=https', peer], // an element without for=
      ['for=192.0.2.43, ', peer], // a trailing empty element
      ['for=192.0.2.43:0x50', peer],
    ];
    for (const [forwarded, expected] of cases) {
      assert.equal(resolve({ peer, forwarded }), expected, forwarded);
    }
  });
});
