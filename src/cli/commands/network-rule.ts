// `berth network-rule add|list|remove|check`: a registry's IP rules, as `az acr network-rule`, plus
// `check`, which asks the server how it would decide for an address.

import type { Command } from 'commander';
import type { IpRule } from '../../api-client/index.js';
import type { CliDeps, GlobalOptions } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { action, groupCommand, leafCommand } from '../options.js';
import type { TableSpec } from '../output.js';
import { ipRuleView, REGISTRY_TABLE, registryView } from '../views.js';
import { registryNameOption } from './registry.js';

interface RuleOptions extends GlobalOptions {
  name: string;
  ipAddress: string;
}

const RULE_LIST_TABLE: TableSpec = {
  columns: [
    { header: 'ACTION', value: (r) => r.action },
    { header: 'IP ADDRESS OR RANGE', value: (r) => r.ipAddressOrRange },
  ],
  rows: (data) => ((data as { ipRules?: unknown[] } | null)?.ipRules ?? []) as unknown[],
};

const CHECK_TABLE: TableSpec = {
  columns: [
    { header: 'IP', value: (c) => c.ip },
    { header: 'ALLOWED', value: (c) => c.allowed },
    { header: 'VIA', value: (c) => c.via ?? c.reason },
    { header: 'MATCHED RULE', value: (c) => c.matchedRule },
  ],
};

/** Registers `berth network-rule ...`. */
export function registerNetworkRuleCommands(program: Command, deps: CliDeps): void {
  const group = groupCommand(program, 'network-rule', "Manage a registry's IP network rules.");

  leafCommand(group, 'add', 'Allow an IP address or CIDR range.')
    .addOption(registryNameOption())
    .requiredOption('--ip-address <address>', 'an IPv4/IPv6 address or CIDR range, e.g. 203.0.113.0/24')
    .addHelpText('after', '\nExample:\n  berth network-rule add -n myregistry --ip-address 203.0.113.0/24')
    .action(
      action<RuleOptions>(deps, async (options, ctx) => {
        // One atomic request: the server merges the rule in, so concurrent adds never lose each other.
        // A rule already present (in any spelling) is the server's Warning, shown by the client; exit 0.
        const result = await ctx
          .client()
          .addIpRules(options.name, [{ action: 'Allow', value: options.ipAddress }]);
        ctx.print(registryView(result.registry), REGISTRY_TABLE);
      }),
    );

  leafCommand(group, 'list', "List a registry's IP rules.")
    .addOption(registryNameOption())
    .action(
      action<RuleOptions>(deps, async (options, ctx) => {
        const registry = await ctx.client().getRegistry(options.name);
        const ipRules = currentRules(registry.properties.networkRuleSet?.ipRules).map(ipRuleView);
        ctx.print({ ipRules }, RULE_LIST_TABLE);
      }),
    );

  leafCommand(group, 'remove', 'Remove the rule for an IP address or CIDR range.')
    .addOption(registryNameOption())
    .requiredOption('--ip-address <address>', 'the address or range (any spelling of the listed rule)')
    .action(
      action<RuleOptions>(deps, async (options, ctx) => {
        const result = await ctx.client().removeIpRules(options.name, [options.ipAddress]);
        if (result.notPresent.length > 0) {
          throw new CliError(
            `registry '${options.name}' has no IP rule for '${options.ipAddress}'`,
            EXIT.notFound,
          );
        }
        ctx.print(registryView(result.registry), REGISTRY_TABLE);
      }),
    );

  leafCommand(group, 'check', "Ask how the registry's network rules decide for an address.")
    .addOption(registryNameOption())
    .requiredOption('--ip <address>', 'the client address to decide for')
    .addHelpText(
      'after',
      '\nExample:\n  berth network-rule check -n myregistry --ip 198.51.100.7 --query allowed -o tsv',
    )
    .action(
      action<GlobalOptions & { name: string; ip: string }>(deps, async (options, ctx) => {
        ctx.print(await ctx.client().checkNetworkAccess(options.name, options.ip), CHECK_TABLE);
      }),
    );
}

// Tolerates the az spelling on input too, in case a server echoes it.
function currentRules(rules: readonly IpRule[] | undefined): IpRule[] {
  return (rules ?? []).map((rule) => ({ action: 'Allow', value: ipRuleView(rule).ipAddressOrRange }));
}
