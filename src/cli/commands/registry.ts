// `berth create|show|list|update|delete|show-endpoints|show-usage`: the `az acr` verbs on registries themselves.

import { Option, type Command } from 'commander';
import {
  ApiError,
  type RegistryPatch,
  type RegistrySettableProperties,
  type SkuName,
} from '../../api-client/index.js';
import type { CliDeps, CommandContext, GlobalOptions } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { action, booleanOption, choiceParser, DEFAULT_ACTIONS, leafCommand, SKUS } from '../options.js';
import { REGISTRY_TABLE, registryView } from '../views.js';

interface NameOption extends GlobalOptions {
  name: string;
}

interface SettableOptions {
  adminEnabled?: boolean;
  anonymousPullEnabled?: boolean;
  defaultAction?: 'Allow' | 'Deny';
  publicNetworkEnabled?: boolean;
  allowTrustedServices?: boolean;
  networkEnforcement?: 'Enforced' | 'ReportOnly';
}

interface CreateOptions extends NameOption, SettableOptions {
  sku: SkuName;
}

interface UpdateOptions extends NameOption, SettableOptions {
  sku?: SkuName;
}

/** `-n, --name` as az spells it. */
export function registryNameOption(): Option {
  return new Option('-n, --name <registry>', 'name of the registry').makeOptionMandatory();
}

/** Registers the registry verbs on the root program. */
export function registerRegistryCommands(program: Command, deps: CliDeps): void {
  leafCommand(program, 'create', 'Create a registry.')
    .addOption(registryNameOption())
    .addOption(
      new Option('--sku <sku>', 'Basic | Standard | Premium')
        .argParser(choiceParser(SKUS))
        .makeOptionMandatory(),
    )
    .addOption(booleanOption('--admin-enabled', 'enable the admin user'))
    .addOption(defaultActionOption())
    .addOption(booleanOption('--public-network-enabled', 'allow access from public networks'))
    .addOption(booleanOption('--allow-trusted-services', 'let trusted services bypass the network rules'))
    .addOption(new Option('-l, --location <location>').hideHelp())
    .addHelpText('after', '\nExample:\n  berth create -n myregistry --sku Premium --default-action Deny')
    .action(action(deps, create));

  leafCommand(program, 'show', 'Show a registry.')
    .addOption(registryNameOption())
    .addHelpText(
      'after',
      '\nExample:\n  berth show -n myregistry --query networkRuleSet.defaultAction -o tsv',
    )
    .action(
      action<NameOption>(deps, async (options, ctx) => {
        ctx.print(registryView(await ctx.client().getRegistry(options.name)), REGISTRY_TABLE);
      }),
    );

  leafCommand(program, 'list', 'List the registries you can see.')
    .addHelpText('after', '\nExample:\n  berth list -o table')
    .action(
      action<GlobalOptions>(deps, async (_options, ctx) => {
        ctx.print((await ctx.client().listRegistries()).map(registryView), REGISTRY_TABLE);
      }),
    );

  leafCommand(program, 'update', 'Update a registry; only the given settings change.')
    .addOption(registryNameOption())
    .addOption(new Option('--sku <sku>', 'Basic | Standard | Premium').argParser(choiceParser(SKUS)))
    .addOption(booleanOption('--admin-enabled', 'enable the admin user'))
    .addOption(booleanOption('--anonymous-pull-enabled', 'allow pulls without credentials'))
    .addOption(defaultActionOption())
    .addOption(
      booleanOption(
        '--public-network-enabled',
        'allow access from public networks (false also sets --default-action Deny)',
      ),
    )
    .addOption(booleanOption('--allow-trusted-services', 'let trusted services bypass the network rules'))
    .addOption(
      new Option(
        '--network-enforcement <mode>',
        'Enforced | ReportOnly (log what the rules would refuse, refuse nothing)',
      ).argParser(choiceParser(['Enforced', 'ReportOnly'] as const)),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  berth update -n myregistry --default-action Deny\n  berth update -n myregistry --public-network-enabled false\n  berth update -n myregistry --default-action Deny --network-enforcement ReportOnly',
    )
    .action(action(deps, update));

  leafCommand(program, 'delete', 'Delete a registry and all its content.')
    .addOption(registryNameOption())
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      action<NameOption & { yes?: boolean }>(deps, async (options, ctx) => {
        await ctx.confirm(
          `Are you sure you want to delete the registry '${options.name}' and all its content?`,
          options.yes,
        );
        await ctx.client().deleteRegistry(options.name);
      }),
    );

  leafCommand(program, 'show-endpoints', "Show a registry's login server and data endpoints.")
    .addOption(registryNameOption())
    .action(
      action<NameOption>(deps, async (options, ctx) => {
        ctx.print(await ctx.client().getEndpoints(options.name), {
          columns: [
            { header: 'LOGIN SERVER', value: (e) => e.loginServer },
            { header: 'DATA ENDPOINTS', value: (e) => (e.dataEndpoints as string[] | undefined)?.join(', ') },
          ],
        });
      }),
    );

  leafCommand(
    program,
    'show-usage',
    "Show a registry's storage, IP rules and private endpoints against its SKU's limits.",
  )
    .addOption(registryNameOption())
    .action(
      action<NameOption>(deps, async (options, ctx) => {
        ctx.print(await ctx.client().getUsages(options.name), {
          rows: (result) => (result as { value: unknown[] }).value,
          columns: [
            { header: 'NAME', value: (u) => u.name },
            { header: 'LIMIT', value: (u) => u.limit },
            { header: 'CURRENT VALUE', value: (u) => u.currentValue },
            { header: 'UNIT', value: (u) => u.unit },
          ],
        });
      }),
    );
}

function defaultActionOption(): Option {
  return new Option(
    '--default-action <action>',
    'Allow | Deny: what happens to addresses no IP rule matches',
  ).argParser(choiceParser(DEFAULT_ACTIONS));
}

async function create(options: CreateOptions, ctx: CommandContext): Promise<void> {
  const client = ctx.client();
  // PUT replaces an existing registry; `create` must not, so it looks first (as az checks the name).
  try {
    await client.getRegistry(options.name);
    throw new CliError(`the registry name '${options.name}' is already in use`);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
  }
  const properties = settableProperties(options, ctx, options.name);
  const registry = await client.putRegistry(options.name, {
    sku: { name: options.sku },
    ...(Object.keys(properties).length > 0 ? { properties } : {}),
  });
  ctx.print(registryView(registry), REGISTRY_TABLE);
}

async function update(options: UpdateOptions, ctx: CommandContext): Promise<void> {
  const properties = settableProperties(options, ctx, options.name);
  const patch: RegistryPatch = {};
  if (options.sku) patch.sku = { name: options.sku };
  if (Object.keys(properties).length > 0) patch.properties = properties;
  if (Object.keys(patch).length === 0) {
    throw new UsageError(
      'nothing to update: pass at least one of --sku, --admin-enabled, --anonymous-pull-enabled, --default-action, --public-network-enabled, --allow-trusted-services, --network-enforcement',
    );
  }
  ctx.print(registryView(await ctx.client().patchRegistry(options.name, patch)), REGISTRY_TABLE);
}

/** Maps az-style flags to the API's property names; only flags that were given appear. */
export function settableProperties(
  options: SettableOptions,
  ctx: Pick<CommandContext, 'warn'>,
  name: string,
): RegistrySettableProperties {
  const properties: RegistrySettableProperties = {};
  if (options.adminEnabled !== undefined) properties.adminUserEnabled = options.adminEnabled;
  if (options.anonymousPullEnabled !== undefined)
    properties.anonymousPullEnabled = options.anonymousPullEnabled;
  let defaultAction = options.defaultAction;
  if (options.publicNetworkEnabled !== undefined) {
    properties.publicNetworkAccess = options.publicNetworkEnabled ? 'Enabled' : 'Disabled';
    // As az does: with public access off, the default action is Deny, so re-enabling public access
    // later does not silently open the registry to every address.
    if (!options.publicNetworkEnabled && defaultAction === undefined) {
      defaultAction = 'Deny';
      ctx.warn(
        `Disabling public network access also sets the default action to Deny: registry '${name}' is now reachable only through approved private endpoints (and trusted services, if allowed).`,
      );
    }
  }
  if (defaultAction !== undefined) properties.networkRuleSet = { defaultAction };
  if (options.networkEnforcement !== undefined)
    properties.networkRuleSet = { ...properties.networkRuleSet, enforcement: options.networkEnforcement };
  if (options.allowTrustedServices !== undefined) {
    properties.networkRuleBypassOptions = options.allowTrustedServices ? 'AzureServices' : 'None';
  }
  return properties;
}
