// `berth role assignment create|list|delete`: roles of users and API keys on a registry, as
// `az role assignment` does for ACR (Owner, Contributor, Reader, and the data-plane roles AcrPull,
// AcrPush, AcrDelete).

import { Option, type Command } from 'commander';
import type { CliDeps, GlobalOptions } from '../context.js';
import { action, choiceParser, groupCommand, leafCommand } from '../options.js';

const ROLES = ['Owner', 'Contributor', 'Reader', 'AcrPull', 'AcrPush', 'AcrDelete'] as const;

/** `--registry` accepts a name or an ARM-style id (`/registries/<name>`, what `az --scope` takes). */
function registryOption(): Option {
  return new Option('--registry <registry>', 'the registry (name, or its id /registries/<name>)')
    .argParser((value: string) => value.slice(value.lastIndexOf('/') + 1))
    .makeOptionMandatory();
}

function roleOption(): Option {
  return new Option('--role <role>', ROLES.join(' | ')).argParser(choiceParser(ROLES)).makeOptionMandatory();
}

type AssignmentOptions = GlobalOptions & { registry: string; assignee: string; role: string };

/** Registers `berth role assignment ...`. */
export function registerRoleCommands(program: Command, deps: CliDeps): void {
  const role = groupCommand(program, 'role', 'Manage who may do what on a registry.');
  const assignment = groupCommand(role, 'assignment', 'Manage role assignments.');

  leafCommand(assignment, 'create', 'Give a user or API key a role on a registry.')
    .requiredOption('--assignee <principal>', 'user name, API key name, or id')
    .addOption(roleOption())
    .addOption(registryOption())
    .addHelpText(
      'after',
      '\nExample:\n  berth role assignment create --assignee ci --role AcrPush --registry myregistry',
    )
    .action(
      action<AssignmentOptions>(deps, async (options, ctx) => {
        ctx.print(await ctx.client().assignRole(options.registry, options.assignee, options.role));
      }),
    );

  leafCommand(assignment, 'list', 'List the role assignments that cover a registry.')
    .addOption(registryOption())
    .action(
      action<GlobalOptions & { registry: string }>(deps, async (options, ctx) => {
        ctx.print(await ctx.client().listRoleAssignments(options.registry), {
          columns: [
            { header: 'PRINCIPAL', value: (a) => a.principalName },
            { header: 'ROLE', value: (a) => a.role },
            { header: 'SCOPE', value: (a) => a.registry },
          ],
        });
      }),
    );

  leafCommand(assignment, 'delete', "Remove a principal's role on a registry.")
    .requiredOption('--assignee <principal>', 'user name, API key name, or id')
    .addOption(roleOption())
    .addOption(registryOption())
    .action(
      action<AssignmentOptions>(deps, async (options, ctx) => {
        await ctx.client().removeRole(options.registry, options.assignee, options.role);
      }),
    );
}
