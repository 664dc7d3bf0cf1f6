// IP rules as request bodies carry them and as registries store them: canonical values, set rules,
// pull-only and expiry attributes.

import { ManagementError } from '../errors/management.js';
import { InvalidIpRuleError, normalizeIpRules } from '../network/index.js';
import { ipRuleWarnings, type StoredRule } from './registry-model.js';

/** An IP rule in a request body. */
export interface IpRuleBody {
  action?: 'Allow';
  value?: string;
  /** Names an IP set instead of giving `value`. */
  ipSet?: string;
  actions?: 'pull' | 'all';
  expiresAt?: string;
}

/** Validates a PATCH/PUT rule list: canonical values (with warnings), set rules once each. */
export function normaliseRules(rules: IpRuleBody[], warnings: string[]): StoredRule[] {
  const addressRules = rules.filter((r) => r.ipSet === undefined);
  let parsed: ReturnType<typeof normalizeIpRules>['rules'];
  try {
    parsed = normalizeIpRules(addressRules.map((r) => r.value ?? '')).rules;
  } catch (error) {
    if (error instanceof InvalidIpRuleError) {
      const index = rules.findIndex((r) => r.value === error.value);
      throw new ManagementError('InvalidNetworkRule', error.message, {
        target: `properties.networkRuleSet.ipRules[${Math.max(0, index)}].value`,
      });
    }
    throw error;
  }
  const sets = new Set<string>();
  let next = 0;
  return rules.map((body, index) => {
    if (body.ipSet !== undefined) {
      if (sets.has(body.ipSet))
        throw new ManagementError('InvalidNetworkRule', `IP set '${body.ipSet}' is listed twice.`, {
          target: `properties.networkRuleSet.ipRules[${index}].ipSet`,
        });
      sets.add(body.ipSet);
      return storedRule(body, ipSetValue(body.ipSet));
    }
    const rule = parsed[next++]!;
    warnings.push(...ipRuleWarnings(body.value ?? '', rule));
    return storedRule(body, rule.value);
  });
}

/** The `value` that stands for a rule naming an IP set (its identity in the rule list). */
export function ipSetValue(name: string): string {
  return `ipSet:${name}`;
}

/** The stored form of a rule from a request: canonical value, `pull` kept, expiry as canonical ISO. */
export function storedRule(body: IpRuleBody, value: string): StoredRule {
  return {
    action: 'Allow',
    value,
    ...(body.ipSet !== undefined ? { ipSet: body.ipSet } : {}),
    ...(body.actions === 'pull' ? { actions: 'pull' as const } : {}),
    ...(body.expiresAt !== undefined ? { expiresAt: new Date(body.expiresAt).toISOString() } : {}),
  };
}
