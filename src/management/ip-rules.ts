// Atomic, idempotent edits of a registry's IP rules: add or remove one or many rules in one
// compare-and-swap write, so concurrent editors never lose each other's rules and nobody has to
// read the whole list, change it and write it back.

import { ManagementError } from '../errors/management.js';
import { InvalidIpRuleError, parseIpRule, type ParsedIpRule } from '../network/index.js';
import { ipRuleWarnings } from './registry-model.js';
import { ipSetValue, storedRule, type IpRuleBody } from './ip-rule-model.js';
import type { RegistryManager, WriteCondition } from './registries.js';
import type { StoredRule } from './registry-model.js';

/** A rule as a caller sends it to the add operation. */
export type IpRuleInput = IpRuleBody;

/** A rule naming an IP set reads as itself: no host bits, nothing to normalise. */
function setRule(name: string): ParsedIpRule {
  return {
    value: ipSetValue(name),
    family: 4,
    prefixLength: 0,
    hostBitsCleared: false,
    coversAllIPv4: false,
  };
}

function sameAttributes(a: StoredRule, b: StoredRule): boolean {
  return a.actions === b.actions && a.expiresAt === b.expiresAt;
}

/** What an add did: which canonical rules are new, which were there already, which changed attributes. */
export interface AddOutcome {
  added: string[];
  alreadyPresent: string[];
  updated: string[];
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

  /**
   * Adds rules; ones already present (in any spelling) are reported, not duplicated. A present rule
   * given with other attributes (actions, expiry) takes the new ones and is reported as updated, so
   * re-adding a CI runner's address with a fresh `expiresAt` extends it.
   */
  async add(name: string, rules: IpRuleInput[], condition: WriteCondition = {}) {
    // Parsed once, outside the retry loop: only the merge is repeated when another writer wins.
    const parsed = rules.map((rule, index) => {
      const canonicalRule =
        rule.ipSet !== undefined ? setRule(rule.ipSet) : canonical(rule.value ?? '', index);
      if (rule.expiresAt !== undefined && Date.parse(rule.expiresAt) <= Date.now()) {
        throw new ManagementError('InvalidNetworkRule', `IP rule '${rule.value}' expires in the past.`, {
          target: `ipRules[${index}].expiresAt`,
        });
      }
      const input = rule.value ?? canonicalRule.value;
      return { input, parsed: canonicalRule, stored: storedRule(rule, canonicalRule.value) };
    });
    return this.registries.mutate<AddOutcome>(
      name,
      (settings) => {
        const list = settings.networkRuleSet.ipRules;
        const at = new Map(list.map((r, i) => [r.value, i]));
        const previousCount = list.length;
        const outcome: AddOutcome = { added: [], alreadyPresent: [], updated: [] };
        const warnings: string[] = [];
        for (const { input, parsed: rule, stored } of parsed) {
          warnings.push(...ipRuleWarnings(input, rule, 'read'));
          const index = at.get(rule.value);
          if (index === undefined) {
            at.set(rule.value, list.length);
            outcome.added.push(rule.value);
            list.push(stored);
          } else if (sameAttributes(list[index]!, stored)) {
            outcome.alreadyPresent.push(rule.value);
            warnings.push(
              input === rule.value
                ? `IP rule '${rule.value}' is already present.`
                : `IP rule '${input}' is already present as '${rule.value}'.`,
            );
          } else {
            list[index] = stored;
            outcome.updated.push(rule.value);
          }
        }
        if (outcome.added.length > 0) {
          const previous = { ...settings, networkRuleSet: { ...settings.networkRuleSet } };
          previous.networkRuleSet.ipRules = list.slice(0, previousCount);
          this.registries.enforcePlan(settings, previous);
        }
        const unchanged = outcome.added.length === 0 && outcome.updated.length === 0;
        return { settings, warnings, outcome, unchanged };
      },
      condition,
    );
  }

  /** Removes rules given in any spelling; ones that were not there are reported, not an error. */
  async remove(name: string, values: string[], condition: WriteCondition = {}) {
    const wanted = values.map((value, index) =>
      value.startsWith('ipSet:') ? value : canonical(value, index).value,
    );
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
