// decideAccess against a brute-force oracle over random policies with every rule kind: expiring and
// pull-only rules, report-only enforcement, the trusted-service bypass, private endpoints, and an
// identity's own address ranges. Plus expiry with a controllable clock.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  compileIpRules,
  compileNetworkPolicy,
  decideAccess,
  parseClientAddress,
  type AccessEntry,
  type NetworkAction,
  type StoredIpRule,
} from '../../../src/network/index.js';

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);

/** Rules and clients in 10.0.0.0/14, so random prefixes overlap often. */
const addressArb = fc.tuple(
  fc.integer({ min: 0, max: 3 }),
  fc.integer({ min: 0, max: 255 }),
  fc.integer({ min: 0, max: 255 }),
);
const text = ([b, c, d]: [number, number, number]) => `10.${b}.${c}.${d}`;
const rangeArb = fc.tuple(addressArb, fc.integer({ min: 14, max: 32 })).map(([a, len]) => {
  const bits = ((10 << 24) | (a[0] << 16) | (a[1] << 8) | a[2]) >>> 0;
  const network = len === 0 ? 0 : (bits & (0xffffffff << (32 - len))) >>> 0;
  return `${network >>> 24}.${(network >>> 16) & 255}.${(network >>> 8) & 255}.${network & 255}/${len}`;
});
const ruleArb = fc.record(
  {
    value: rangeArb,
    actions: fc.constantFrom<'pull' | 'all' | undefined>('pull', 'all', undefined),
    expiresAt: fc.constantFrom<number | undefined>(undefined, NOW - 1, NOW, NOW + 1, NOW + 60_000),
  },
  { requiredKeys: ['value'] },
);

function contains(range: string, ip: string): boolean {
  const [net, len] = range.split('/');
  const toInt = (s: string) => s.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
  const mask = Number(len) === 0 ? 0 : (0xffffffff << (32 - Number(len))) >>> 0;
  return (toInt(ip) & mask) >>> 0 === (toInt(net!) & mask) >>> 0;
}

interface Case {
  publicNetworkAccess: 'Enabled' | 'Disabled';
  defaultAction: 'Allow' | 'Deny';
  bypass: boolean;
  enforcement: 'Enforced' | 'ReportOnly';
  rules: { value: string; actions?: 'pull' | 'all' | undefined; expiresAt?: number | undefined }[];
  entry: 'public' | 'Approved' | 'Pending';
  trusted: boolean;
  identityRanges: string[] | undefined;
  action: NetworkAction;
  client: string;
}

/** What the documented semantics say, computed by scanning every rule. */
function oracle(c: Case): { allowed: boolean; reason?: string; via?: string; wouldDeny?: string } {
  const registry = (): { allowed: boolean; reason?: string; via?: string; wouldDeny?: string } => {
    if (c.entry !== 'public')
      return c.entry === 'Approved'
        ? { allowed: true, via: 'privateEndpoint' }
        : { allowed: false, reason: 'privateEndpointNotApproved' };
    const bypass = c.bypass && c.trusted;
    if (c.publicNetworkAccess === 'Disabled')
      return bypass
        ? { allowed: true, via: 'trustedService' }
        : { allowed: false, reason: 'publicNetworkAccessDisabled' };
    if (c.defaultAction === 'Allow') return { allowed: true, via: 'defaultAction' };
    const active = c.rules.filter((r) => r.expiresAt === undefined || r.expiresAt > NOW);
    const matching = active.filter((r) => contains(r.value, c.client));
    if (matching.length > 0 && (c.action === 'pull' || matching.some((r) => r.actions !== 'pull')))
      return { allowed: true, via: 'ipRule' };
    if (bypass) return { allowed: true, via: 'trustedService' };
    const reason = matching.length === 0 ? 'ipNotAllowed' : 'actionNotAllowed';
    return c.enforcement === 'ReportOnly'
      ? { allowed: true, via: 'reportOnly', wouldDeny: reason }
      : { allowed: false, reason };
  };
  const answer = registry();
  if (answer.allowed && c.identityRanges && !c.identityRanges.some((r) => contains(r, c.client)))
    return { allowed: false, reason: 'identityNetworkNotAllowed' };
  return answer;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  publicNetworkAccess: fc.constantFrom('Enabled', 'Enabled', 'Disabled'),
  defaultAction: fc.constantFrom('Deny', 'Deny', 'Allow'),
  bypass: fc.boolean(),
  enforcement: fc.constantFrom('Enforced', 'Enforced', 'ReportOnly'),
  rules: fc.array(ruleArb, { maxLength: 30 }),
  entry: fc.constantFrom('public', 'public', 'public', 'Approved', 'Pending'),
  trusted: fc.boolean(),
  identityRanges: fc.option(fc.array(rangeArb, { maxLength: 4 }), { nil: undefined }),
  action: fc.constantFrom<NetworkAction>('pull', 'push'),
  client: addressArb.map(text),
});

function run(c: Case) {
  const ipRules: StoredIpRule[] = c.rules.map((r) => ({
    value: r.value,
    ...(r.actions ? { actions: r.actions } : {}),
    ...(r.expiresAt !== undefined ? { expiresAt: new Date(r.expiresAt).toISOString() } : {}),
  }));
  const policy = compileNetworkPolicy(
    {
      publicNetworkAccess: c.publicNetworkAccess,
      defaultAction: c.defaultAction,
      ipRules,
      networkRuleBypassOptions: c.bypass ? 'AzureServices' : 'None',
      enforcement: c.enforcement,
    },
    { now: NOW },
  );
  const entry: AccessEntry =
    c.entry === 'public'
      ? { kind: 'public' }
      : { kind: 'private', connectionName: 'pe', connectionState: c.entry };
  const identity = {
    trustedService: c.trusted,
    ...(c.identityRanges ? { allowedNetworks: compileIpRules(c.identityRanges) } : {}),
  };
  return decideAccess(policy, entry, parseClientAddress(c.client)!, identity, c.action);
}

describe('decideAccess agrees with a brute-force oracle', () => {
  test('on random policies with expiring, pull-only, report-only and identity-limited rules', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const got = run(c);
        const want = oracle(c);
        assert.equal(got.allowed, want.allowed, JSON.stringify({ got, want }));
        if (!got.allowed) {
          assert.equal(got.reason, want.reason);
          assert.ok(got.message.startsWith(`client with IP '${c.client}' is not allowed access.`));
          return;
        }
        assert.equal(got.via, want.via);
        assert.equal(got.wouldDeny?.reason, want.wouldDeny);
        if (got.via === 'ipRule') {
          // The rule named contains the client, is in force, and allows the action.
          assert.ok(got.rule && contains(got.rule, c.client), got.rule);
          const listed = c.rules.filter(
            (r) => r.value === got.rule && (r.expiresAt === undefined || r.expiresAt > NOW),
          );
          assert.ok(listed.length > 0, `${got.rule} is a rule in force`);
          if (c.action === 'push') assert.ok(listed.some((r) => r.actions !== 'pull'));
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('rule expiry with a controllable clock', () => {
  const settings = (expiresAt: string) => ({
    publicNetworkAccess: 'Enabled' as const,
    defaultAction: 'Deny' as const,
    ipRules: [{ value: '192.0.2.0/24', expiresAt }, { value: '198.51.100.7' }],
    networkRuleBypassOptions: 'None' as const,
  });
  const at = '2026-12-01T14:00:00.000Z';
  const client = parseClientAddress('192.0.2.9')!;

  test('a rule matches until its instant, not at it; validUntil is that instant', () => {
    const before = compileNetworkPolicy(settings(at), { now: Date.parse(at) - 1 });
    assert.equal(before.validUntil, Date.parse(at));
    assert.deepEqual(decideAccess(before, { kind: 'public' }, client), {
      allowed: true,
      via: 'ipRule',
      rule: '192.0.2.0/24',
      ruleExpiresAt: at,
    });
    const after = compileNetworkPolicy(settings(at), { now: Date.parse(at) });
    assert.equal(after.validUntil, Infinity);
    assert.equal(decideAccess(after, { kind: 'public' }, client).allowed, false);
    assert.deepEqual(after.expired, [{ value: '192.0.2.0/24', actions: 'all', expiresAt: at }]);
    // Rules without an expiry are untouched by it.
    assert.equal(decideAccess(after, { kind: 'public' }, parseClientAddress('198.51.100.7')!).allowed, true);
  });

  test('a pull-only rule lets pulls through and explains a refused push', () => {
    const policy = compileNetworkPolicy({
      publicNetworkAccess: 'Enabled',
      defaultAction: 'Deny',
      ipRules: [{ value: '10.0.0.0/8', actions: 'pull' }, { value: '10.1.0.0/16' }],
      networkRuleBypassOptions: 'None',
    });
    const inPull = parseClientAddress('10.2.0.1')!;
    assert.deepEqual(decideAccess(policy, { kind: 'public' }, inPull, undefined, 'pull'), {
      allowed: true,
      via: 'ipRule',
      rule: '10.0.0.0/8',
      ruleActions: 'pull',
    });
    const refused = decideAccess(policy, { kind: 'public' }, inPull, undefined, 'push');
    assert.equal(refused.allowed, false);
    assert.equal(!refused.allowed && refused.reason, 'actionNotAllowed');
    assert.equal(!refused.allowed && refused.rule, '10.0.0.0/8');
    // A less specific pull-only rule does not stop a more specific (or any) push rule.
    assert.deepEqual(
      decideAccess(policy, { kind: 'public' }, parseClientAddress('10.1.2.3')!, undefined, 'push'),
      {
        allowed: true,
        via: 'ipRule',
        rule: '10.1.0.0/16',
      },
    );
  });
});
