// `berth network-rule add|list|remove|check`: a registry's IP rules, as `az acr network-rule`, plus
// `check`, which asks the server how it would decide for an address.

import { InvalidArgumentError, Option, type Command } from 'commander';
import type { IpRule } from '../../api-client/index.js';
import type { CliDeps, GlobalOptions } from '../context.js';
import { CliError, EXIT, UsageError } from '../errors.js';
import { action, choiceParser, groupCommand, leafCommand } from '../options.js';
import type { TableSpec } from '../output.js';
import { ipRuleView, REGISTRY_TABLE, registryView } from '../views.js';
import { registryNameOption } from './registry.js';

interface RuleOptions extends GlobalOptions {
  name: string;
  ipAddress?: string;
  ipSet?: string;
  expiresIn?: number;
  actions?: 'pull' | 'all';
}

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--expires-in`: a duration such as `90s`, `30m`, `2h`, `7d`, in milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d{1,6})([smhd])$/.exec(value);
  if (!match || Number(match[1]) === 0)
    throw new InvalidArgumentError('expected a duration such as 90s, 30m, 2h or 7d.');
  return Number(match[1]) * DURATION_UNITS[match[2]!]!;
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
    .option('--ip-address <address>', 'an IPv4/IPv6 address or CIDR range, e.g. 203.0.113.0/24')
    .option('--ip-set <name>', 'allow the ranges of a named IP set (berth ip-set create) instead')
    .addOption(
      new Option(
        '--expires-in <duration>',
        'the rule stops matching after this long (90s, 30m, 2h, 7d)',
      ).argParser(parseDuration),
    )
    .addOption(
      new Option('--actions <actions>', 'pull: reads only; all (default): push and delete too').argParser(
        choiceParser(['pull', 'all'] as const),
      ),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  berth network-rule add -n myregistry --ip-address 203.0.113.0/24\n  berth network-rule add -n myregistry --ip-address 198.51.100.7 --expires-in 2h   # a CI runner, for one job\n  berth network-rule add -n myregistry --ip-address 10.0.0.0/8 --actions pull      # the company pulls only',
    )
    .action(
      action<RuleOptions>(deps, async (options, ctx) => {
        // One atomic request: the server merges the rule in, so concurrent adds never lose each other.
        // A rule already present (in any spelling) is the server's Warning, shown by the client; exit 0.
        const rule: IpRule = {
          action: 'Allow',
          ...ruleTarget(options),
          ...(options.actions ? { actions: options.actions } : {}),
          ...(options.expiresIn ? { expiresAt: new Date(Date.now() + options.expiresIn).toISOString() } : {}),
        };
        const result = await ctx.client().addIpRules(options.name, [rule]);
        ctx.print(registryView(result.registry), REGISTRY_TABLE);
      }),
    );

  leafCommand(group, 'list', "List a registry's IP rules.")
    .addOption(registryNameOption())
    .action(
      action<RuleOptions>(deps, async (options, ctx) => {
        const registry = await ctx.client().getRegistry(options.name);
        const ipRules = (registry.properties.networkRuleSet?.ipRules ?? []).map(ipRuleView);
        ctx.print({ ipRules }, RULE_LIST_TABLE);
      }),
    );

  leafCommand(group, 'remove', 'Remove the rule for an IP address or CIDR range.')
    .addOption(registryNameOption())
    .option('--ip-address <address>', 'the address or range (any spelling of the listed rule)')
    .option('--ip-set <name>', 'the IP set the rule names')
    .action(
      action<RuleOptions>(deps, async (options, ctx) => {
        const { value } = ruleTarget(options);
        const result = await ctx.client().removeIpRules(options.name, [value]);
        if (result.notPresent.length > 0) {
          throw new CliError(
            `registry '${options.name}' has no IP rule for '${options.ipAddress ?? options.ipSet}'`,
            EXIT.notFound,
          );
        }
        ctx.print(registryView(result.registry), REGISTRY_TABLE);
      }),
    );

  leafCommand(group, 'check', "Ask how the registry's network rules decide for an address.")
    .addOption(registryNameOption())
    .requiredOption('--ip <address>', 'the client address to decide for')
    .addOption(
      new Option('--action <action>', 'pull (default) or push: what the request would do').argParser(
        choiceParser(['pull', 'push'] as const),
      ),
    )
    .addHelpText(
      'after',
      '\nExample:\n  berth network-rule check -n myregistry --ip 198.51.100.7 --query allowed -o tsv',
    )
    .action(
      action<GlobalOptions & { name: string; ip: string; action?: 'pull' | 'push' }>(
        deps,
        async (options, ctx) => {
          ctx.print(
            await ctx.client().checkNetworkAccess(options.name, options.ip, options.action),
            CHECK_TABLE,
          );
        },
      ),
    );
}

/** The rule `--ip-address` or `--ip-set` names (exactly one of them). */
function ruleTarget(options: RuleOptions): { value: string; ipSet?: string } {
  if ((options.ipAddress === undefined) === (options.ipSet === undefined))
    throw new UsageError('pass exactly one of --ip-address and --ip-set');
  return options.ipSet !== undefined
    ? { value: `ipSet:${options.ipSet}`, ipSet: options.ipSet }
    : { value: options.ipAddress! };
}
