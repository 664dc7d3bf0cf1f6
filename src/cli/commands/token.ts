// `berth token create|update|list|show|delete|credential generate|credential delete`, as
// `az acr token`: user names for one registry whose rights come from a scope map.

import { Option, type Command } from 'commander';
import type { ManagementClient } from '../../api-client/index.js';
import type { CliDeps, GlobalOptions } from '../context.js';
import { action, choiceParser, groupCommand, leafCommand, parsePositiveInt } from '../options.js';
import { UsageError } from '../errors.js';
import { repositoryActions } from './scope-map.js';

type TokenOptions = GlobalOptions & {
  name: string;
  registry: string;
  scopeMap?: string;
  repository?: string[];
  status?: 'enabled' | 'disabled';
  passwords?: boolean;
  expirationInDays?: number;
  password1?: boolean;
  password2?: boolean;
  /** Ranges given; false from `--no-allowed-ip-ranges` (remove them). */
  allowedIpRanges?: string[] | false;
};

const collect = (value: string, previous: string[] = []) => [...previous, value];
const statusOption = () =>
  new Option('--status <status>', 'enabled | disabled').argParser(
    choiceParser(['enabled', 'disabled'] as const),
  );
const rangesOption = () =>
  new Option(
    '--allowed-ip-ranges <ranges...>',
    "the token's own addresses or CIDR ranges, checked besides the registry's rules",
  );
const rangesOf = (ranges: string[] | false | undefined) =>
  ranges === undefined ? {} : { allowedIpRanges: ranges === false ? [] : ranges };
const expiryOption = () =>
  new Option('--expiration-in-days <days>', 'passwords expire after this many days').argParser(
    parsePositiveInt,
  );

function expiryOf(days: number | undefined): string | undefined {
  return days === undefined ? undefined : new Date(Date.now() + days * 86_400_000).toISOString();
}

async function generate(
  client: ManagementClient,
  registry: string,
  token: string,
  which: 'password1' | 'password2' | undefined,
  days: number | undefined,
) {
  const expiry = expiryOf(days);
  return client.generateCredentials(registry, {
    tokenId: token,
    ...(which ? { name: which } : {}),
    ...(expiry ? { expiry } : {}),
  });
}

/** Registers `berth token ...`. */
export function registerTokenCommands(program: Command, deps: CliDeps): void {
  const group = groupCommand(program, 'token', 'Manage repository-scoped tokens.');
  const common = (command: Command) =>
    command
      .requiredOption('-n, --name <token>', 'name of the token (its user name)')
      .requiredOption('-r, --registry <registry>', 'name of the registry');

  common(leafCommand(group, 'create', 'Create a token; its passwords are shown once.'))
    .option('--scope-map <name>', 'scope map to use (e.g. _repositories_pull)')
    .option(
      '--repository <repo-and-actions...>',
      'instead of --scope-map: a repository then its actions',
      collect,
    )
    .addOption(statusOption())
    .addOption(rangesOption())
    .option('--no-passwords', 'do not generate passwords now')
    .addOption(expiryOption())
    .addHelpText(
      'after',
      `
Examples:
  berth token create -n ci -r myregistry --scope-map _repositories_push
  berth token create -n reader -r myregistry --repository app content/read --expiration-in-days 30
  berth token create -n ci -r myregistry --scope-map _repositories_push --allowed-ip-ranges 10.1.0.0/16`,
    )
    .action(
      action<TokenOptions>(deps, async (options, ctx) => {
        const client = ctx.client();
        let scopeMap = options.scopeMap;
        if (!scopeMap) {
          // As az: a token made from --repository gets its own scope map, `<token>-scope-map`.
          const actions = repositoryActions((options.repository ?? []).flat());
          if (actions.length === 0) throw new UsageError('give --scope-map, or --repository with actions');
          scopeMap = `${options.name}-scope-map`;
          await client.putScopeMap(options.registry, scopeMap, {
            actions,
            description: `Scope map of token ${options.name}`,
          });
        }
        const token = await client.putToken(options.registry, options.name, {
          scopeMapId: scopeMap,
          ...(options.status ? { status: options.status } : {}),
          ...rangesOf(options.allowedIpRanges),
        });
        const credentials =
          options.passwords === false
            ? undefined
            : await generate(client, options.registry, options.name, undefined, options.expirationInDays);
        ctx.print(credentials ? { ...token, credentials } : token);
      }),
    );

  common(leafCommand(group, 'update', "Change a token's scope map, status or address ranges."))
    .option('--scope-map <name>', 'scope map to use')
    .addOption(statusOption())
    .addOption(rangesOption())
    .option('--no-allowed-ip-ranges', "remove the token's address ranges")
    .action(
      action<TokenOptions>(deps, async (options, ctx) => {
        ctx.print(
          await ctx.client().putToken(
            options.registry,
            options.name,
            {
              ...(options.scopeMap ? { scopeMapId: options.scopeMap } : {}),
              ...(options.status ? { status: options.status } : {}),
              ...rangesOf(options.allowedIpRanges),
            },
            'PATCH',
          ),
        );
      }),
    );

  leafCommand(group, 'list', 'List tokens.')
    .requiredOption('-r, --registry <registry>', 'name of the registry')
    .action(
      action<GlobalOptions & { registry: string }>(deps, async (options, ctx) => {
        ctx.print(await ctx.client().listTokens(options.registry), {
          columns: [
            { header: 'NAME', value: (t) => t.name },
            {
              header: 'SCOPE MAP',
              value: (t) =>
                String((t.properties as { scopeMapId?: string }).scopeMapId ?? '')
                  .split('/')
                  .pop(),
            },
            { header: 'STATUS', value: (t) => (t.properties as { status?: string }).status },
            {
              header: 'ALLOWED IP RANGES',
              value: (t) => (t.properties as { allowedIpRanges?: string[] }).allowedIpRanges?.join(', '),
            },
          ],
        });
      }),
    );

  common(leafCommand(group, 'show', 'Show a token (never its passwords).')).action(
    action<TokenOptions>(deps, async (options, ctx) => {
      ctx.print(await ctx.client().getToken(options.registry, options.name));
    }),
  );

  common(leafCommand(group, 'delete', 'Delete a token.')).action(
    action<TokenOptions>(deps, async (options, ctx) => {
      await ctx.client().deleteToken(options.registry, options.name);
    }),
  );

  const credential = groupCommand(group, 'credential', "Manage a token's passwords.");
  common(leafCommand(credential, 'generate', 'Generate password1, password2 or both; shown once.'))
    .option('--password1', 'only password1')
    .option('--password2', 'only password2')
    .addOption(expiryOption())
    .action(
      action<TokenOptions>(deps, async (options, ctx) => {
        const which =
          options.password1 && !options.password2
            ? 'password1'
            : options.password2 && !options.password1
              ? 'password2'
              : undefined;
        ctx.print(
          await generate(ctx.client(), options.registry, options.name, which, options.expirationInDays),
        );
      }),
    );

  common(leafCommand(credential, 'delete', "Delete one of a token's passwords."))
    .option('--password1', 'delete password1')
    .option('--password2', 'delete password2')
    .action(
      action<TokenOptions>(deps, async (options, ctx) => {
        const client = ctx.client();
        let result: unknown;
        if (options.password1)
          result = await client.deleteTokenPassword(options.registry, options.name, 'password1');
        if (options.password2)
          result = await client.deleteTokenPassword(options.registry, options.name, 'password2');
        if (result === undefined) throw new UsageError('name --password1 and/or --password2');
        ctx.print(result);
      }),
    );
}
