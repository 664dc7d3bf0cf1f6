import { ManagementError } from '../errors/management.js';
import { InvalidIpRuleError, normalizeIpRules } from '../network/index.js';

/**
 * Address ranges (an API key's or a token's `allowedIpRanges`, an IP set's `ranges`) in canonical form;
 * InvalidNetworkRule (400) naming the bad one under `target`.
 */
export function canonicalIpRanges(ranges: string[], target = 'allowedIpRanges'): string[] {
  try {
    return normalizeIpRules(ranges).rules.map((r) => r.value);
  } catch (error) {
    if (error instanceof InvalidIpRuleError) {
      throw new ManagementError('InvalidNetworkRule', error.message, {
        target: `${target}[${Math.max(0, ranges.indexOf(error.value))}]`,
      });
    }
    throw error;
  }
}
