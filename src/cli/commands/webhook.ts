// `berth webhook create|update|list|show|delete|ping|list-events`: `az acr webhook` over the
// management API.

import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CliDeps, GlobalOptions } from '../context.js';
import { UsageError } from '../errors.js';
import { action, groupCommand, leafCommand } from '../options.js';

interface WebhookOptions extends GlobalOptions {
  registry: string;
  name: string;
  uri?: string;
  actions?: string[];
  scope?: string;
  headers?: Record<string, string>;
  status?: string;
}

const ACTIONS = ['push', 'delete', 'quarantine', 'chart_push', 'chart_delete', 'networkDenied'];

/** `--headers k=v k2=v2`: collected into one object. */
function parseHeader(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, not '${value}'.`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/** Registers `berth webhook ...`. */
export function registerWebhookCommands(program: Command, deps: CliDeps): void {
  const group = groupCommand(
    program,
    'webhook',
    'Manage webhooks: calls to a URL when images are pushed or deleted.',
  );
  const registry = () =>
    new Option('-r, --registry <registry>', 'name of the registry').makeOptionMandatory();
  const name = () => new Option('-n, --name <webhook>', 'name of the webhook').makeOptionMandatory();
  const settings = (command: Command) =>
    command
      .option('--uri <url>', 'the service URI events are POSTed to')
      .addOption(
        new Option('--actions <actions...>', 'the actions that trigger the webhook').choices(ACTIONS),
      )
      .option('--scope <scope>', "repositories and tags: 'repo:tag', 'repo:*', or empty for all")
      .addOption(
        new Option('--headers <key=value...>', 'custom headers sent with every event').argParser(parseHeader),
      )
      .addOption(
        new Option('--status <status>', 'whether the webhook fires').choices(['enabled', 'disabled']),
      );
  const properties = (o: WebhookOptions) => ({
    ...(o.uri !== undefined ? { serviceUri: o.uri } : {}),
    ...(o.actions !== undefined ? { actions: o.actions } : {}),
    ...(o.scope !== undefined ? { scope: o.scope } : {}),
    ...(o.headers !== undefined ? { customHeaders: o.headers } : {}),
    ...(o.status !== undefined ? { status: o.status } : {}),
  });

  settings(leafCommand(group, 'create', 'Create a webhook; its signing secret is printed only now.'))
    .addOption(registry())
    .addOption(name())
    .addHelpText(
      'after',
      "\nExample:\n  berth webhook create -r myregistry -n hook1 --uri https://example.com/hook --actions push delete --scope 'app:*'",
    )
    .action(
      action<WebhookOptions>(deps, async (o, ctx) => {
        if (o.uri === undefined || o.actions === undefined)
          throw new UsageError('create needs --uri and --actions');
        ctx.print(await ctx.client().webhook('PUT', o.registry, o.name, properties(o)));
      }),
    );

  settings(leafCommand(group, 'update', 'Change a webhook.'))
    .addOption(registry())
    .addOption(name())
    .action(
      action<WebhookOptions>(deps, async (o, ctx) => {
        ctx.print(await ctx.client().webhook('PATCH', o.registry, o.name, properties(o)));
      }),
    );

  leafCommand(group, 'list', "List a registry's webhooks.")
    .addOption(registry())
    .action(
      action<WebhookOptions>(deps, async (o, ctx) => {
        ctx.print(await ctx.client().listWebhooks(o.registry), {
          columns: [
            { header: 'NAME', value: (w) => String(w.name) },
            { header: 'STATUS', value: (w) => String((w.properties as { status: string }).status) },
            { header: 'ACTIONS', value: (w) => (w.properties as { actions: string[] }).actions.join(',') },
            {
              header: 'SERVICE URI',
              value: (w) => String((w.properties as { serviceUri: string }).serviceUri),
            },
          ],
        });
      }),
    );

  leafCommand(group, 'show', 'Show a webhook.')
    .addOption(registry())
    .addOption(name())
    .action(
      action<WebhookOptions>(deps, async (o, ctx) => {
        ctx.print(await ctx.client().webhook('GET', o.registry, o.name));
      }),
    );

  leafCommand(group, 'delete', 'Delete a webhook and its delivery log.')
    .addOption(registry())
    .addOption(name())
    .action(
      action<WebhookOptions>(deps, async (o, ctx) => {
        await ctx.client().webhook('DELETE', o.registry, o.name);
      }),
    );

  leafCommand(group, 'ping', 'Send a ping event to the webhook.')
    .addOption(registry())
    .addOption(name())
    .action(
      action<WebhookOptions>(deps, async (o, ctx) => {
        ctx.print(await ctx.client().webhookAction(o.registry, o.name, 'ping'));
      }),
    );

  leafCommand(group, 'list-events', "List the webhook's recent events and the receiver's answers.")
    .addOption(registry())
    .addOption(name())
    .action(
      action<WebhookOptions>(deps, async (o, ctx) => {
        const events = (await ctx.client().webhookAction(o.registry, o.name, 'listEvents')).value as Record<
          string,
          unknown
        >[];
        ctx.print(events, {
          columns: [
            { header: 'ID', value: (e) => String(e.id) },
            { header: 'ACTION', value: (e) => String(e.action) },
            { header: 'STATUS', value: (e) => String(e.status) },
            { header: 'ATTEMPTS', value: (e) => String(e.attempts) },
            {
              header: 'HTTP',
              value: (e) =>
                String((e.eventResponseMessage as { statusCode: number | null }).statusCode ?? ''),
            },
          ],
        });
      }),
    );
}
