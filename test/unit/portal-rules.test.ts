// The portal's pure helpers: the Firewall rows' validation (the server's own parser underneath) and
// the bucketing of refused requests for the chart.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BARS, bucketDenials } from '../../src/portal/components/networking/denial-buckets.js';
import { canonicalRule, checkRules } from '../../src/portal/components/networking/rules.js';

const rows = (...values: string[]) => values.map((value, i) => ({ id: i + 1, value }));

test('valid rows give their canonical rules; host bits are cleared with a notice, not an error', () => {
  const check = checkRules(rows('203.0.113.0/24', ' 198.51.100.7/24 ', '2001:DB8::/32', ''), 10);
  assert.equal(check.valid, true);
  assert.deepEqual(check.rules, ['203.0.113.0/24', '198.51.100.0/24', '2001:db8::/32']);
  assert.deepEqual(check.checks[1], { notice: 'Host bits are set; it will be saved as 198.51.100.0/24.' });
  assert.deepEqual(check.checks[3], {}, 'an empty row is ignored');
});

test('a bad address, a duplicate spelling and rows past the limit are errors on their own rows', () => {
  const check = checkRules(
    rows('10.0.0.0/8', 'example.com', '10.1.2.3/8', '10.0.0.0/8', '192.0.2.1', '192.0.2.2'),
    2,
  );
  assert.equal(check.valid, false);
  assert.equal(check.checks[0]!.error, undefined);
  assert.match(check.checks[1]!.error ?? '', /hostnames are not allowed/);
  assert.equal(check.checks[2]!.error, 'Duplicates row 1 (both are 10.0.0.0/8).');
  assert.equal(check.checks[3]!.error, 'Duplicates row 1.');
  assert.equal(check.checks[4]!.error, undefined, 'the second distinct rule is within a limit of 2');
  assert.match(check.checks[5]!.error ?? '', /at most 2 IP rules/);
});

test('canonicalRule reads what the client IP box compares', () => {
  assert.equal(canonicalRule('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(canonicalRule('127.0.0.1/32'), '127.0.0.1');
  assert.equal(canonicalRule('not an address'), undefined);
});

test('denials are bucketed by reason, from timeSeries when present and from value otherwise', () => {
  const since = new Date('2026-12-01T10:00:00Z');
  const until = new Date('2026-12-01T11:00:00Z');
  const fromValue = bucketDenials(
    {
      value: [
        {
          time: '2026-12-01T10:00:30Z',
          clientIp: '10.0.0.1',
          method: 'GET',
          path: '/v2/',
          reason: 'ipNotAllowed',
          entry: {},
        },
        {
          time: '2026-12-01T10:59:59Z',
          clientIp: '10.0.0.1',
          method: 'GET',
          path: '/v2/',
          reason: 'ipNotAllowed',
          entry: {},
        },
        {
          time: '2026-12-01T10:59:00Z',
          clientIp: '10.0.0.2',
          method: 'GET',
          path: '/v2/',
          reason: 'publicNetworkAccessDisabled',
          entry: {},
        },
        {
          time: '2026-12-01T09:00:00Z',
          clientIp: '10.0.0.3',
          method: 'GET',
          path: '/v2/',
          reason: 'ipNotAllowed',
          entry: {},
        },
      ],
      countsByIp: [],
    },
    since,
    until,
  );
  assert.deepEqual(fromValue.reasons, ['ipNotAllowed', 'publicNetworkAccessDisabled']);
  assert.equal(fromValue.counts.length, BARS);
  assert.deepEqual(fromValue.counts[0], [1, 0]);
  assert.deepEqual(fromValue.counts[BARS - 1], [1, 1]);
  const total = fromValue.counts.flat().reduce((a, b) => a + b, 0);
  assert.equal(total, 3, 'a denial before the range is not drawn');

  const fromSeries = bucketDenials(
    {
      value: [],
      countsByIp: [],
      timeSeries: [
        { time: '2026-12-01T10:00:00Z', counts: { ipNotAllowed: 5 } },
        { time: '2026-12-01T10:30:00Z', counts: { ipNotAllowed: 2, privateEndpointNotApproved: 7 } },
      ],
    },
    since,
    until,
  );
  assert.deepEqual(fromSeries.reasons, ['ipNotAllowed', 'privateEndpointNotApproved']);
  assert.deepEqual(fromSeries.counts[0], [5, 0]);
  assert.deepEqual(fromSeries.counts[BARS / 2], [2, 7]);
});
