// `berth private-endpoint-connection ...`: as `az acr private-endpoint-connection` (`-r/--registry-name`
// names the registry, `-n/--name` the connection), plus `create`, because a Berth private endpoint is a
// listener address rather than an Azure network resource created elsewhere.

import { Option, type Command } from 'commander';
import type { ConnectionStatus } from '../../api-client/index.js';
import type { CliDeps, CommandContext, GlobalOptions } from '../context.js';
import { action, groupCommand, leafCommand } from '../options.js';
import { CONNECTION_TABLE, connectionView } from '../views.js';

interface ConnectionOptions extends GlobalOptions {
  registryName: string;
  name: string;
  description?: string;
  address?: string;
  yes?: boolean;
}

function registryOption(): Option {
  return new Option('-r, --registry-name <registry>', 'name of the registry').makeOptionMandatory();
}

function connectionOption(): Option {
  return new Option(
    '-n, --name <connection>',
    'name of the private endpoint connection',
  ).makeOptionMandatory();
}

/** Registers `berth private-endpoint-connection ...`. */
export function registerPrivateEndpointConnectionCommands(program: Command, deps: CliDeps): void {
  const group = groupCommand(
    program,
    'private-endpoint-connection',
    "Manage a registry's private endpoint connections (private listeners).",
  );

  leafCommand(group, 'list', 'List the private endpoint connections of a registry.')
    .addOption(registryOption())
    .action(
      action<ConnectionOptions>(deps, async (options, ctx) => {
        const connections = await ctx.client().listPrivateEndpointConnections(options.registryName);
        ctx.print(connections.map(connectionView), CONNECTION_TABLE);
      }),
    );

  leafCommand(group, 'show', 'Show a private endpoint connection.')
    .addOption(registryOption())
    .addOption(connectionOption())
    .action(
      action<ConnectionOptions>(deps, async (options, ctx) => {
        const connection = await ctx
          .client()
          .getPrivateEndpointConnection(options.registryName, options.name);
        ctx.print(connectionView(connection), CONNECTION_TABLE);
      }),
    );

  leafCommand(
    group,
    'create',
    'Request a private endpoint: a listener on host:port (Pending until approved).',
  )
    .addOption(registryOption())
    .addOption(connectionOption())
    .requiredOption('--address <host:port>', 'where the private listener binds, e.g. 10.0.0.5:5000')
    .option('--description <text>', 'why the connection is requested')
    .addHelpText(
      'after',
      '\nExample:\n  berth private-endpoint-connection create -r myregistry -n build-agents --address 10.0.0.5:5000',
    )
    .action(
      action<ConnectionOptions>(deps, async (options, ctx) => {
        const connection = await ctx
          .client()
          .putPrivateEndpointConnection(options.registryName, options.name, {
            properties: {
              privateEndpoint: { address: options.address! },
              ...(options.description !== undefined
                ? {
                    privateLinkServiceConnectionState: {
                      status: 'Pending',
                      description: options.description,
                    },
                  }
                : {}),
            },
          });
        ctx.print(connectionView(connection), CONNECTION_TABLE);
      }),
    );

  for (const [verb, status, help] of [
    ['approve', 'Approved', 'Approve a private endpoint connection: its listener starts serving.'],
    ['reject', 'Rejected', 'Reject a private endpoint connection: its listener refuses every request.'],
  ] as const) {
    leafCommand(group, verb, help)
      .addOption(registryOption())
      .addOption(connectionOption())
      .option('--description <text>', `why the connection is ${status.toLowerCase()}`)
      .action(
        action<ConnectionOptions>(deps, async (options, ctx) => {
          ctx.print(connectionView(await setState(ctx, options, status)), CONNECTION_TABLE);
        }),
      );
  }

  leafCommand(group, 'delete', 'Delete a private endpoint connection and close its listener.')
    .addOption(registryOption())
    .addOption(connectionOption())
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      action<ConnectionOptions>(deps, async (options, ctx) => {
        await ctx.confirm(
          `Are you sure you want to delete the private endpoint connection '${options.name}' of registry '${options.registryName}'?`,
          options.yes,
        );
        await ctx.client().deletePrivateEndpointConnection(options.registryName, options.name);
      }),
    );
}

async function setState(ctx: CommandContext, options: ConnectionOptions, status: ConnectionStatus) {
  const client = ctx.client();
  // A PUT on an existing connection may change only its state; sending the address it already has
  // back unchanged keeps the body valid whether or not the server insists on it.
  const current = await client.getPrivateEndpointConnection(options.registryName, options.name);
  const description =
    options.description ?? current.properties.privateLinkServiceConnectionState?.description ?? '';
  return client.putPrivateEndpointConnection(options.registryName, options.name, {
    properties: {
      privateEndpoint: current.properties.privateEndpoint,
      privateLinkServiceConnectionState: { status, description },
    },
  });
}
