// `berth run-gc`, `berth show-gc-runs` and `berth config retention update|show`: garbage collection
// and ACR's retention policy for untagged manifests.

import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CliDeps, GlobalOptions } from '../context.js';
import { action, groupCommand, leafCommand } from '../options.js';
import { registryNameOption } from './registry.js';

interface GcOptions extends GlobalOptions {
  name: string;
  dryRun?: boolean;
}

interface RetentionOptions extends GlobalOptions {
  name: string;
  days?: number;
  type?: string;
  status?: string;
}

/** `--days`: 0 to 365, as ACR allows. */
function parseDays(value: string): number {
  if (!/^\d{1,3}$/.test(value) || Number(value) > 365)
    throw new InvalidArgumentError('expected a whole number of days from 0 to 365.');
  return Number(value);
}

/** Registers the garbage collection and retention commands. */
export function registerGcCommands(program: Command, deps: CliDeps): void {
  leafCommand(program, 'run-gc', 'Run garbage collection on a registry now (after its retention policy).')
    .addOption(registryNameOption())
    .option('--dry-run', 'only report what would be removed and how many bytes')
    .action(
      action<GcOptions>(deps, async (options, ctx) => {
        ctx.print(await ctx.client().runGc(options.name, options.dryRun ?? false), {
          columns: [
            { header: 'DRY RUN', value: (r) => String(r.dryRun) },
            { header: 'MANIFESTS', value: (r) => String(r.manifestsDeleted) },
            { header: 'BLOBS', value: (r) => String(r.blobsDeleted) },
            { header: 'BYTES', value: (r) => String(r.bytesReclaimed) },
            { header: 'STATUS', value: (r) => String(r.status) },
          ],
        });
      }),
    );

  leafCommand(program, 'show-gc-runs', "List a registry's last garbage collection runs, newest first.")
    .addOption(registryNameOption())
    .action(
      action<GcOptions>(deps, async (options, ctx) => {
        ctx.print((await ctx.client().listGcRuns(options.name)).value, {
          columns: [
            { header: 'STARTED', value: (r) => String(r.startedAt) },
            { header: 'TRIGGER', value: (r) => String(r.trigger) },
            { header: 'BLOBS', value: (r) => String(r.blobsDeleted) },
            { header: 'BYTES', value: (r) => String(r.bytesReclaimed) },
            { header: 'STATUS', value: (r) => String(r.status) },
          ],
        });
      }),
    );

  const config = groupCommand(program, 'config', 'Configure registry policies.');
  const retention = groupCommand(config, 'retention', 'The retention policy for untagged manifests.');
  const typeOption = () =>
    new Option('--type <type>', 'the kind of content the policy removes')
      .choices(['UntaggedManifests'])
      .default('UntaggedManifests');

  leafCommand(retention, 'update', 'Change the retention policy.')
    .addOption(registryNameOption())
    .addOption(
      new Option('--days <n>', 'remove untagged manifests older than this (0-365)').argParser(parseDays),
    )
    .addOption(typeOption())
    .addOption(new Option('--status <status>', 'turn the policy on or off').choices(['enabled', 'disabled']))
    .addHelpText(
      'after',
      '\nExample:\n  berth config retention update -n myregistry --days 30 --type UntaggedManifests --status enabled',
    )
    .action(
      action<RetentionOptions>(deps, async (options, ctx) => {
        ctx.print(
          await ctx.client().updateRetentionPolicy(options.name, {
            ...(options.days !== undefined ? { days: options.days } : {}),
            ...(options.status !== undefined ? { status: options.status } : {}),
            type: options.type ?? 'UntaggedManifests',
          }),
        );
      }),
    );

  leafCommand(retention, 'show', 'Show the retention policy.')
    .addOption(registryNameOption())
    .action(
      action<RetentionOptions>(deps, async (options, ctx) => {
        ctx.print(await ctx.client().getRetentionPolicy(options.name));
      }),
    );
}
