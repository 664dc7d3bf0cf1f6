// `berth ip-set create|update|show|list|delete`: named lists of address ranges ("office",
// "ci-runners") that any registry's rules can name with `berth network-rule add --ip-set NAME`.

import { Option, type Command } from 'commander';
import type { IpSet } from '../../api-client/index.js';
import type { CliDeps, GlobalOptions } from '../context.js';
import { action, groupCommand, leafCommand } from '../options.js';
import type { TableSpec } from '../output.js';

interface SetOptions extends GlobalOptions {
  name: string;
  ranges?: string[];
  description?: string;
}

const SET_TABLE: TableSpec = {
  columns: [
    { header: 'NAME', value: (s) => s.name },
    { header: 'RANGES', value: (s) => (s.ranges as string[] | undefined)?.join(', ') },
    { header: 'DESCRIPTION', value: (s) => s.description },
  ],
};

/** An IP set flattened, as the other views print resources. */
function setView(set: IpSet): Record<string, unknown> {
  return { ...set.properties, id: set.id, name: set.name, type: set.type };
}

const nameOption = () =>
  new Option('-n, --name <name>', 'name of the IP set (lower case, e.g. office)').makeOptionMandatory();
const rangesOption = () =>
  new Option('--ranges <ranges...>', 'addresses or CIDR ranges, e.g. 203.0.113.0/24 2001:db8::/48');

/** Registers `berth ip-set ...`. */
export function registerIpSetCommands(program: Command, deps: CliDeps): void {
  const group = groupCommand(program, 'ip-set', 'Manage named IP sets that network rules can refer to.');

  // One PUT, no read first: the server keeps the description when none is given, so a concurrent
  // edit is never overwritten with a stale copy read here.
  const putSet = action<SetOptions>(deps, async (options, ctx) => {
    const set = await ctx.client().putIpSet(options.name, {
      ranges: options.ranges ?? [],
      ...(options.description !== undefined ? { description: options.description } : {}),
    });
    ctx.print(setView(set), SET_TABLE);
  });

  leafCommand(group, 'create', 'Create (or replace) an IP set.')
    .addOption(nameOption())
    .addOption(rangesOption().makeOptionMandatory())
    .option('--description <text>', 'what the set is for')
    .addHelpText(
      'after',
      '\nExample:\n  berth ip-set create -n office --ranges 203.0.113.0/24 198.51.100.0/24',
    )
    .action(putSet);

  leafCommand(group, 'update', "Replace an IP set's ranges (every registry naming it changes at once).")
    .addOption(nameOption())
    .addOption(rangesOption().makeOptionMandatory())
    .option('--description <text>', 'what the set is for (kept when not given)')
    .action(putSet);

  leafCommand(group, 'show', 'Show an IP set.')
    .addOption(nameOption())
    .action(
      action<SetOptions>(deps, async (options, ctx) => {
        ctx.print(setView(await ctx.client().getIpSet(options.name)), SET_TABLE);
      }),
    );

  leafCommand(group, 'list', 'List the IP sets.').action(
    action<GlobalOptions>(deps, async (_options, ctx) => {
      ctx.print((await ctx.client().listIpSets()).map(setView), SET_TABLE);
    }),
  );

  leafCommand(group, 'delete', 'Delete an IP set no registry names any more.')
    .addOption(nameOption())
    .action(
      action<SetOptions>(deps, async (options, ctx) => {
        await ctx.client().deleteIpSet(options.name);
      }),
    );
}
