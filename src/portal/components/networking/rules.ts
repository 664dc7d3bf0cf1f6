// Validation of the firewall rows as the owner types them. It uses the server's own parser
// (src/network/address.ts is pure), so the page and the API can never disagree about a rule.
import { InvalidIpRuleError, parseIpRule } from '../../../network/address.js';

/** One row of the Firewall table. */
export interface RuleRow {
  id: number;
  value: string;
}

/** What the page says about a row: an error that blocks Save, or a notice that does not. */
export interface RowCheck {
  error?: string;
  notice?: string;
}

/** The rows checked together, and the canonical rules to save when there are no errors. */
export interface RulesCheck {
  checks: RowCheck[];
  rules: string[];
  valid: boolean;
}

/** Checks every row: syntax, host bits (normalised, with a notice), duplicates, and the plan's limit. */
export function checkRules(rows: readonly RuleRow[], limit: number): RulesCheck {
  const seen = new Map<string, number>();
  const rules: string[] = [];
  const checks = rows.map((row, index): RowCheck => {
    const text = row.value.trim();
    if (text === '') return {};
    let canonical: string;
    let hostBitsCleared: boolean;
    try {
      ({ value: canonical, hostBitsCleared } = parseIpRule(text));
    } catch (error) {
      if (error instanceof InvalidIpRuleError) return { error: error.message };
      throw error;
    }
    const first = seen.get(canonical);
    if (first !== undefined)
      return { error: `Duplicates row ${first + 1}${canonical === text ? '' : ` (both are ${canonical})`}.` };
    seen.set(canonical, index);
    rules.push(canonical);
    if (rules.length > limit)
      return { error: `Over the plan's limit: a registry in this SKU can have at most ${limit} IP rules.` };
    if (hostBitsCleared) return { notice: `Host bits are set; it will be saved as ${canonical}.` };
    return {};
  });
  return { checks, rules, valid: checks.every((c) => c.error === undefined) };
}

/** The canonical form of one address or range, or undefined when it is not one. */
export function canonicalRule(value: string): string | undefined {
  try {
    return parseIpRule(value.trim()).value;
  } catch {
    return undefined;
  }
}
