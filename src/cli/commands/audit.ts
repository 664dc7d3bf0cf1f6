// `berth audit denials -n R`: the requests a registry's network rules refused, counted per address,
// reason and minute (newest first), with totals per client address and a per-minute series, so an
// owner can see who is knocking before opening a rule. The JSON output is the API's answer verbatim.

import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CliDeps, GlobalOptions } from '../context.js';
import { action, choiceParser, groupCommand, leafCommand, parsePositiveInt } from '../options.js';
import { registryNameOption } from './registry.js';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: an ISO 8601 time, or a duration back from now such as `30m`, `12h`, `7d`. */
export function parseSince(value: string, now: () => number = Date.now): string {
  const relative = /^(\d{1,6})([smhd])$/.exec(value);
  if (relative) return new Date(now() - Number(relative[1]) * UNITS[relative[2]!]!).toISOString();
  const time = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(time)) {
    throw new InvalidArgumentError(
      'expected an ISO 8601 time (2026-01-31T12:00:00Z) or a duration (30m, 12h, 7d).',
    );
  }
  return new Date(time).toISOString();
}

/** Registers `berth audit ...`. */
export function registerAuditCommands(program: Command, deps: CliDeps): void {
  const group = groupCommand(program, 'audit', 'Look at what the network rules refused, and who signed in.');

  leafCommand(
    group,
    'sign-ins',
    'List sign-ins (success and failure), counted per minute, identity and address.',
  )
    .option('-n, --name <registry>', 'one registry (default: every sign-in, the management API included)')
    .addOption(
      new Option('--since <time>', 'only sign-ins after this time (ISO 8601, or 30m, 12h, 7d)').argParser(
        (v) => parseSince(v),
      ),
    )
    .addOption(
      new Option('--result <result>', 'success | failure | rateLimited | disabled').argParser(
        choiceParser(['success', 'failure', 'rateLimited', 'disabled'] as const),
      ),
    )
    .addOption(new Option('--top <n>', 'at most this many rows').argParser(parsePositiveInt))
    .action(
      action<GlobalOptions & { name?: string; since?: string; result?: string; top?: number }>(
        deps,
        async (options, ctx) => {
          const signIns = await ctx.client().listSignIns(options.name, {
            ...(options.since !== undefined ? { since: options.since } : {}),
            ...(options.result !== undefined ? { result: options.result } : {}),
            ...(options.top !== undefined ? { top: options.top } : {}),
          });
          ctx.print(signIns, {
            columns: [
              { header: 'LAST SEEN', value: (s) => s.lastSeen },
              { header: 'REGISTRY', value: (s) => s.registry },
              { header: 'IDENTITY', value: (s) => s.identity },
              { header: 'CLIENT IP', value: (s) => s.clientIp },
              { header: 'RESULT', value: (s) => s.result },
              { header: 'COUNT', value: (s) => s.count },
            ],
            rows: (data) => ((data as { value?: unknown[] } | null)?.value ?? []) as unknown[],
          });
        },
      ),
    );

  leafCommand(group, 'denials', 'List requests refused by the network rules, and counts per address.')
    .addOption(registryNameOption())
    .addOption(
      new Option('--since <time>', 'only denials after this time (ISO 8601, or 30m, 12h, 7d)').argParser(
        (v) => parseSince(v),
      ),
    )
    .option('--ip <address>', 'only denials of this client address')
    .addOption(new Option('--limit <n>', 'at most this many denials').argParser(parsePositiveInt))
    .addHelpText(
      'after',
      '\nExample:\n  berth audit denials -n myregistry --since 24h --query countsByIp -o table',
    )
    .action(
      action<GlobalOptions & { name: string; since?: string; ip?: string; limit?: number }>(
        deps,
        async (options, ctx) => {
          const denials = await ctx.client().listNetworkDenials(options.name, {
            ...(options.since !== undefined ? { since: options.since } : {}),
            ...(options.ip !== undefined ? { ip: options.ip } : {}),
            ...(options.limit !== undefined ? { limit: options.limit } : {}),
          });
          ctx.print(denials, {
            columns: [
              { header: 'TIME', value: (d) => d.time },
              { header: 'COUNT', value: (d) => d.count ?? 1 },
              { header: 'CLIENT IP', value: (d) => d.clientIp },
              { header: 'METHOD', value: (d) => d.method },
              { header: 'PATH', value: (d) => d.path },
              {
                header: 'REASON',
                value: (d) => (d.reportOnly ? `${String(d.reason)} (report only)` : d.reason),
              },
              { header: 'ENTRY', value: (d) => entryText(d.entry) },
            ],
            rows: (data) => ((data as { value?: unknown[] } | null)?.value ?? []) as unknown[],
          });
        },
      ),
    );
}

function entryText(entry: unknown): unknown {
  if (entry && typeof entry === 'object') {
    const { kind, connectionName } = entry as { kind?: string; connectionName?: string };
    return connectionName ? `${kind}:${connectionName}` : kind;
  }
  return entry;
}
