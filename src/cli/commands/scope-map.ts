// `berth scope-map create|update|list|show|delete`, as `az acr scope-map`: which actions a
// repository-scoped token has on which repositories.

import { InvalidArgumentError, type Command } from 'commander';
import type { CliDeps, GlobalOptions } from '../context.js';
import { action, groupCommand, leafCommand } from '../options.js';
import type { TableSpec } from '../output.js';

const ACTIONS = ['content/read', 'content/write', 'content/delete', 'metadata/read', 'metadata/write'];

/** Turns `--repository repo action... [repo action...]` values into ACR action strings. */
export function repositoryActions(values: readonly string[]): string[] {
  const result: string[] = [];
  let repository: string | undefined;
  for (const value of values) {
    if (!ACTIONS.includes(value)) {
      repository = value;
      continue;
    }
    if (!repository) throw new InvalidArgumentError(`'${value}' must follow a repository name.`);
    result.push(`repositories/${repository}/${value}`);
  }
  if (repository && !result.some((a) => a.startsWith(`repositories/${repository}/`)))
    throw new InvalidArgumentError(
      `repository '${repository}' needs at least one action (${ACTIONS.join(', ')}).`,
    );
  return result;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export const SCOPE_MAP_TABLE: TableSpec = {
  columns: [
    { header: 'NAME', value: (m) => m.name },
    { header: 'TYPE', value: (m) => (m.properties as { type?: string } | undefined)?.type },
    {
      header: 'DESCRIPTION',
      value: (m) => (m.properties as { description?: string } | undefined)?.description,
    },
  ],
};

type MapOptions = GlobalOptions & {
  name: string;
  registry: string;
  repository?: string[];
  addRepository?: string[];
  removeRepository?: string[];
  description?: string;
};

/** Registers `berth scope-map ...`. */
export function registerScopeMapCommands(program: Command, deps: CliDeps): void {
  const group = groupCommand(program, 'scope-map', 'Manage scope maps for repository-scoped tokens.');
  const common = (command: Command) =>
    command
      .requiredOption('-n, --name <scope-map>', 'name of the scope map')
      .requiredOption('-r, --registry <registry>', 'name of the registry');

  common(leafCommand(group, 'create', 'Create a scope map.'))
    .option(
      '--repository <repo-and-actions...>',
      `a repository then its actions (${ACTIONS.join(', ')})`,
      collect,
    )
    .option('--description <text>', 'what the scope map is for')
    .addHelpText(
      'after',
      '\nExample:\n  berth scope-map create -n ci-push -r myregistry --repository app content/read content/write',
    )
    .action(
      action<MapOptions>(deps, async (options, ctx) => {
        const actions = repositoryActions((options.repository ?? []).flat());
        ctx.print(
          await ctx.client().putScopeMap(options.registry, options.name, {
            actions,
            ...(options.description !== undefined ? { description: options.description } : {}),
          }),
        );
      }),
    );

  common(leafCommand(group, 'update', 'Add or remove repository actions, or change the description.'))
    .option('--add-repository <repo-and-actions...>', 'a repository then actions to add', collect)
    .option('--remove-repository <repo-and-actions...>', 'a repository then actions to remove', collect)
    .option('--description <text>', 'what the scope map is for')
    .action(
      action<MapOptions>(deps, async (options, ctx) => {
        const client = ctx.client();
        const current = await client.getScopeMap(options.registry, options.name);
        const existing = ((current.properties as { actions?: string[] } | undefined)?.actions ?? []).slice();
        const remove = new Set(repositoryActions((options.removeRepository ?? []).flat()));
        const add = repositoryActions((options.addRepository ?? []).flat());
        const actions = [...new Set([...existing.filter((a) => !remove.has(a)), ...add])];
        ctx.print(
          await client.putScopeMap(
            options.registry,
            options.name,
            { actions, ...(options.description !== undefined ? { description: options.description } : {}) },
            'PATCH',
          ),
        );
      }),
    );

  leafCommand(group, 'list', 'List scope maps, the system ones included.')
    .requiredOption('-r, --registry <registry>', 'name of the registry')
    .action(
      action<GlobalOptions & { registry: string }>(deps, async (options, ctx) => {
        ctx.print(await ctx.client().listScopeMaps(options.registry), SCOPE_MAP_TABLE);
      }),
    );

  common(leafCommand(group, 'show', 'Show a scope map.')).action(
    action<MapOptions>(deps, async (options, ctx) => {
      ctx.print(await ctx.client().getScopeMap(options.registry, options.name));
    }),
  );

  common(leafCommand(group, 'delete', 'Delete a scope map no token uses.')).action(
    action<MapOptions>(deps, async (options, ctx) => {
      await ctx.client().deleteScopeMap(options.registry, options.name);
    }),
  );
}
