import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  InvalidIpRuleError,
  compileNetworkPolicy,
  decideAccess,
  parseClientAddress,
  type AccessEntry,
  type ClientAddress,
  type DefaultAction,
  type PrivateEndpointConnectionState,
  type PublicNetworkAccess,
} from '../../../src/network/index.js';

const PUBLIC: AccessEntry = { kind: 'public' };
const client = (text: string): ClientAddress => parseClientAddress(text)!;
const inside = client('203.0.113.9');
const outside = client('198.51.100.7');
const trusted = { trustedService: true };
const untrusted = { trustedService: false };

function policy(
  publicNetworkAccess: PublicNetworkAccess,
  defaultAction: DefaultAction,
  bypass = false,
  ipRules: string[] = ['203.0.113.0/24', '203.0.113.9', '2001:db8::/32'],
) {
  return compileNetworkPolicy({
    publicNetworkAccess,
    defaultAction,
    ipRules,
    networkRuleBypassOptions: bypass ? 'AzureServices' : 'None',
  });
}

const private_ = (connectionState: PrivateEndpointConnectionState): AccessEntry => ({
  kind: 'private',
  connectionName: 'pe-build-agents',
  connectionState,
});

describe('decideAccess: private endpoint', () => {
  test('Approved is allowed whatever the public settings say', () => {
    for (const p of [
      policy('Disabled', 'Deny'),
      policy('Enabled', 'Deny', false, []),
      policy('Enabled', 'Allow'),
    ]) {
      assert.deepEqual(decideAccess(p, private_('Approved'), outside), {
        allowed: true,
        via: 'privateEndpoint',
      });
    }
  });

  for (const state of ['Pending', 'Rejected', 'Disconnected'] as const) {
    test(`${state} is denied, even for an allowed IP or a trusted service`, () => {
      const expected = {
        allowed: false,
        reason: 'privateEndpointNotApproved',
        message:
          "client with IP '203.0.113.9' is not allowed access. " +
          "The private endpoint connection 'pe-build-agents' is not approved; ask the registry owner to approve it.",
      };
      assert.deepEqual(
        decideAccess(policy('Enabled', 'Allow', true), private_(state), inside, trusted),
        expected,
      );
    });
  }
});

describe('decideAccess: public endpoint, public network access Disabled', () => {
  const message =
    "client with IP '203.0.113.9' is not allowed access. " +
    "Public network access to this registry is disabled; ask the registry owner to update the registry's network rules.";

  test('is denied even when an IP rule or default Allow would admit it', () => {
    for (const p of [policy('Disabled', 'Allow'), policy('Disabled', 'Deny')]) {
      assert.deepEqual(decideAccess(p, PUBLIC, inside), {
        allowed: false,
        reason: 'publicNetworkAccessDisabled',
        message,
      });
    }
  });

  test('a trusted service is let through only when bypass is on', () => {
    assert.deepEqual(decideAccess(policy('Disabled', 'Deny', true), PUBLIC, outside, trusted), {
      allowed: true,
      via: 'trustedService',
    });
    assert.equal(decideAccess(policy('Disabled', 'Deny', false), PUBLIC, outside, trusted).allowed, false);
    assert.equal(decideAccess(policy('Disabled', 'Deny', true), PUBLIC, outside, untrusted).allowed, false);
    assert.equal(decideAccess(policy('Disabled', 'Deny', true), PUBLIC, outside).allowed, false);
  });
});

describe('decideAccess: public endpoint, public network access Enabled', () => {
  test('default Allow admits anyone, rules or not', () => {
    for (const p of [policy('Enabled', 'Allow'), policy('Enabled', 'Allow', false, [])]) {
      assert.deepEqual(decideAccess(p, PUBLIC, outside), { allowed: true, via: 'defaultAction' });
    }
    assert.deepEqual(decideAccess(policy('Enabled', 'Allow', true), PUBLIC, outside, trusted), {
      allowed: true,
      via: 'defaultAction',
    });
  });

  test('default Deny admits an address inside a rule, reporting the most specific rule', () => {
    const p = policy('Enabled', 'Deny');
    assert.deepEqual(decideAccess(p, PUBLIC, inside), { allowed: true, via: 'ipRule', rule: '203.0.113.9' });
    assert.deepEqual(decideAccess(p, PUBLIC, client('203.0.113.10')), {
      allowed: true,
      via: 'ipRule',
      rule: '203.0.113.0/24',
    });
    assert.deepEqual(decideAccess(p, PUBLIC, client('2001:db8::42')), {
      allowed: true,
      via: 'ipRule',
      rule: '2001:db8::/32',
    });
    assert.deepEqual(decideAccess(p, PUBLIC, client('::ffff:203.0.113.10')), {
      allowed: true,
      via: 'ipRule',
      rule: '203.0.113.0/24',
    });
    assert.deepEqual(decideAccess(policy('Enabled', 'Deny', true), PUBLIC, inside, trusted), {
      allowed: true,
      via: 'ipRule',
      rule: '203.0.113.9',
    });
  });

  test('default Deny refuses an address outside every rule, with the exact message', () => {
    for (const [address, text] of [
      [outside, '198.51.100.7'],
      [client('2001:db9::1'), '2001:db9::1'],
    ] as const) {
      assert.deepEqual(decideAccess(policy('Enabled', 'Deny'), PUBLIC, address), {
        allowed: false,
        reason: 'ipNotAllowed',
        message: `client with IP '${text}' is not allowed access. Ask the registry owner to update the registry's network rules to allow this address.`,
      });
    }
    assert.equal(decideAccess(policy('Enabled', 'Deny', false, []), PUBLIC, inside).allowed, false);
  });

  test('a trusted service outside the rules is let through only when bypass is on', () => {
    assert.deepEqual(decideAccess(policy('Enabled', 'Deny', true), PUBLIC, outside, trusted), {
      allowed: true,
      via: 'trustedService',
    });
    assert.equal(decideAccess(policy('Enabled', 'Deny', false), PUBLIC, outside, trusted).allowed, false);
    assert.equal(decideAccess(policy('Enabled', 'Deny', true), PUBLIC, outside, untrusted).allowed, false);
  });
});

describe('compileNetworkPolicy', () => {
  test('reads rules as strings or { value } objects, and maps the bypass option', () => {
    const p = compileNetworkPolicy({
      publicNetworkAccess: 'Enabled',
      defaultAction: 'Deny',
      ipRules: [{ value: '10.0.0.0/8' }, { value: '2001:db8::/32' }],
      networkRuleBypassOptions: 'AzureServices',
    });
    assert.equal(p.ipRules.size, 2);
    assert.equal(p.trustedServicesBypass, true);
    assert.equal(p.ipRules.match('10.1.1.1'), '10.0.0.0/8');
    assert.equal(policy('Enabled', 'Deny', false).trustedServicesBypass, false);
  });

  test('refuses an invalid stored rule instead of silently dropping it', () => {
    assert.throws(() => policy('Enabled', 'Deny', false, ['10.0.0.0/8', 'not-an-ip']), InvalidIpRuleError);
  });
});
