import { Command, InvalidArgumentError, Option } from 'commander';
import type { DefaultAction, SkuName } from '../api-client/index.js';
import type { CliDeps, GlobalOptions } from './context.js';
import { CommandContext } from './context.js';
import { OUTPUT_FORMATS, QueryError, validateQuery } from './output.js';

const GLOBAL = 'Global Options:';

/** Adds a subcommand that runs something; `addGlobalOptions` later gives it the global options. */
export function leafCommand(parent: Command, name: string, description: string): Command {
  return parent.command(name).description(description);
}

/**
 * Gives every command that runs something the options all commands accept. Called once the tree is
 * built, so they are listed after each command's own options, under their own heading.
 */
export function addGlobalOptions(command: Command): void {
  if (command.commands.length > 0) {
    for (const sub of command.commands) addGlobalOptions(sub);
    return;
  }
  command
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(OUTPUT_FORMATS)
        .default('json')
        .helpGroup(GLOBAL),
    )
    .addOption(
      new Option('--query <jmespath>', 'JMESPath query applied to the result; see https://jmespath.org/')
        .argParser(parseQuery)
        .helpGroup(GLOBAL),
    )
    .addOption(
      new Option(
        '--server <url>',
        'management API URL (overrides BERTH_SERVER and the login profile)',
      ).helpGroup(GLOBAL),
    )
    .addOption(new Option('--only-show-errors', 'suppress warnings').helpGroup(GLOBAL))
    // Accepted and ignored so `az acr` scripts port unchanged; Berth has no resource groups or subscriptions.
    .addOption(new Option('-g, --resource-group <name>').hideHelp())
    .addOption(new Option('--subscription <id>').hideHelp());
}

/** Adds a command group (no action of its own; without a subcommand it prints help and exits 2). */
export function groupCommand(parent: Command, name: string, description: string): Command {
  return parent.command(name).description(description);
}

/** Wraps a command's handler: builds its context from the parsed options. */
export function action<T extends GlobalOptions>(
  deps: CliDeps,
  handler: (options: T, context: CommandContext) => Promise<void>,
): (options: T) => Promise<void> {
  return async (options: T) => handler(options, new CommandContext(deps, options));
}

function parseQuery(value: string): string {
  try {
    validateQuery(value);
  } catch (error) {
    if (error instanceof QueryError) throw new InvalidArgumentError(error.message);
    throw error;
  }
  return value;
}

/** az's three-state flags: `--flag`, `--flag true`, `--flag false` (also yes/no), case-insensitive. */
export function parseBoolean(value: string | boolean): boolean {
  if (typeof value === 'boolean') return value;
  const lower = value.toLowerCase();
  if (lower === 'true' || lower === 'yes') return true;
  if (lower === 'false' || lower === 'no') return false;
  throw new InvalidArgumentError("expected 'true' or 'false'.");
}

/** A case-insensitive choice that returns the canonical spelling. */
export function choiceParser<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value: string) => {
    const match = choices.find((choice) => choice.toLowerCase() === value.toLowerCase());
    if (!match) throw new InvalidArgumentError(`Allowed choices are ${choices.join(', ')}.`);
    return match;
  };
}

export const SKUS: readonly SkuName[] = ['Basic', 'Standard', 'Premium'];
export const DEFAULT_ACTIONS: readonly DefaultAction[] = ['Allow', 'Deny'];

/** A `true|false` option in az's style (the value may be omitted, meaning true). */
export function booleanOption(flags: string, description: string): Option {
  return new Option(`${flags} [true|false]`, description).argParser(parseBoolean);
}

/** Parses a positive whole number. */
export function parsePositiveInt(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) === 0) {
    throw new InvalidArgumentError('expected a positive whole number.');
  }
  return Number(value);
}
