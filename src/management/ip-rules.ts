// Atomic, idempotent edits of a registry's IP rules: add or remove one or many rules in one
// compare-and-swap write, so concurrent editors never lose each other's rules and nobody has to
// read the whole list, change it and write it back.

import { ManagementError } from '../errors/management.js';
import { InvalidIpRuleError, parseIpRule, type ParsedIpRule } from '../network/index.js';
import { ipRuleWarnings } from './registry-model.js';
import type { RegistryManager, WriteCondition } from './registries.js';

/** A rule as a caller sends it to the add operation. */
export interface IpRuleInput {
  action?: 'Allow';
  value: string;
}

/** What an add did: which canonical rules are new, which were there already. */
export interface AddOutcome {
  added: string[];
  alreadyPresent: string[];
}

/** What a remove did: which canonical rules went, which were not there. */
export interface RemoveOutcome {
  removed: string[];
  notPresent: string[];
}

/** Canonical form of a rule value; InvalidNetworkRule (400) naming the offending item otherwise. */
function canonical(value: string, index: number): ParsedIpRule {
  try {
    return parseIpRule(value);
  } catch (error) {
    if (error instanceof InvalidIpRuleError) {
      throw new ManagementError('InvalidNetworkRule', error.message, { target: `ipRules[${index}].value` });
    }
    throw error;
  }
}

/** Server-side rule operations on top of RegistryManager's compare-and-swap writes. */
export class IpRuleOperations {
  constructor(private readonly registries: RegistryManager) {}

  /** Adds rules; ones already present (in any spelling) are reported, not duplicated. */
  async add(name: string, rules: IpRuleInput[], condition: WriteCondition = {}) {
    // Parsed once, outside the retry loop: only the merge is repeated when another writer wins.
    const parsed = rules.map((rule, index) => ({ input: rule.value, ...canonical(rule.value, index) }));
    return this.registries.mutate<AddOutcome>(
      name,
      (settings) => {
        const present = new Set(settings.networkRuleSet.ipRules.map((r) => r.value));
        const previousCount = settings.networkRuleSet.ipRules.length;
        const outcome: AddOutcome = { added: [], alreadyPresent: [] };
        const warnings: string[] = [];
        for (const rule of parsed) {
          warnings.push(...ipRuleWarnings(rule.input, rule, 'read'));
          if (present.has(rule.value)) {
            outcome.alreadyPresent.push(rule.value);
            warnings.push(
              rule.input === rule.value
                ? `IP rule '${rule.value}' is already present.`
                : `IP rule '${rule.input}' is already present as '${rule.value}'.`,
            );
            continue;
          }
          present.add(rule.value);
          outcome.added.push(rule.value);
          settings.networkRuleSet.ipRules.push({ action: 'Allow', value: rule.value });
        }
        if (outcome.added.length > 0) {
          const previous = { ...settings, networkRuleSet: { ...settings.networkRuleSet } };
          previous.networkRuleSet.ipRules = settings.networkRuleSet.ipRules.slice(0, previousCount);
          this.registries.enforcePlan(settings, previous);
        }
        return { settings, warnings, outcome, unchanged: outcome.added.length === 0 };
      },
      condition,
    );
  }

  /** Removes rules given in any spelling; ones that were not there are reported, not an error. */
  async remove(name: string, values: string[], condition: WriteCondition = {}) {
    const wanted = values.map((value, index) => canonical(value, index).value);
    return this.registries.mutate<RemoveOutcome>(
      name,
      (settings) => {
        const drop = new Set(wanted);
        const kept = settings.networkRuleSet.ipRules.filter((r) => !drop.has(r.value));
        const present = new Set(settings.networkRuleSet.ipRules.map((r) => r.value));
        const outcome: RemoveOutcome = { removed: [], notPresent: [] };
        for (const value of new Set(wanted))
          (present.has(value) ? outcome.removed : outcome.notPresent).push(value);
        settings.networkRuleSet.ipRules = kept;
        const warnings = outcome.notPresent.map((v) => `IP rule '${v}' was not present.`);
        return { settings, warnings, outcome, unchanged: outcome.removed.length === 0 };
      },
      condition,
    );
  }
}
