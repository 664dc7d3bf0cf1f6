// `berth credential show|renew`: the registry's admin user credentials, as `az acr credential`.

import { Option, type Command } from 'commander';
import type { CliDeps, GlobalOptions } from '../context.js';
import { action, choiceParser, groupCommand, leafCommand } from '../options.js';
import type { TableSpec } from '../output.js';
import { registryNameOption } from './registry.js';

const CREDENTIAL_TABLE: TableSpec = {
  columns: [
    { header: 'USERNAME', value: (c) => c.username },
    { header: 'PASSWORD', value: (c) => passwordNamed(c, 'password') },
    { header: 'PASSWORD2', value: (c) => passwordNamed(c, 'password2') },
  ],
};

function passwordNamed(credentials: Record<string, unknown>, name: string): unknown {
  return (credentials.passwords as { name: string; value: string }[] | undefined)?.find(
    (p) => p.name === name,
  )?.value;
}

/** Registers `berth credential ...`. */
export function registerCredentialCommands(program: Command, deps: CliDeps): void {
  const group = groupCommand(program, 'credential', "Manage a registry's admin user credentials.");

  leafCommand(group, 'show', "Show the admin user's name and passwords.")
    .addOption(registryNameOption())
    .action(
      action<GlobalOptions & { name: string }>(deps, async (options, ctx) => {
        ctx.print(await ctx.client().listCredentials(options.name), CREDENTIAL_TABLE);
      }),
    );

  leafCommand(group, 'renew', 'Regenerate one of the admin passwords.')
    .addOption(registryNameOption())
    .addOption(
      new Option('--password-name <name>', 'password | password2')
        .argParser(choiceParser(['password', 'password2'] as const))
        .makeOptionMandatory(),
    )
    .action(
      action<GlobalOptions & { name: string; passwordName: 'password' | 'password2' }>(
        deps,
        async (options, ctx) => {
          ctx.print(
            await ctx.client().regenerateCredential(options.name, options.passwordName),
            CREDENTIAL_TABLE,
          );
        },
      ),
    );
}
