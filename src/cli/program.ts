import { Command, CommanderError } from 'commander';
import { registerAuditCommands } from './commands/audit.js';
import { registerCheckHealthCommand } from './commands/check-health.js';
import { registerCredentialCommands } from './commands/credential.js';
import { registerGcCommands } from './commands/gc.js';
import { registerIpSetCommands } from './commands/ip-set.js';
import { registerLoginCommands } from './commands/login.js';
import { registerNetworkRuleCommands } from './commands/network-rule.js';
import { registerPrivateEndpointConnectionCommands } from './commands/private-endpoint-connection.js';
import { registerRegistryCommands } from './commands/registry.js';
import { registerRepositoryCommands } from './commands/repository.js';
import { registerRoleCommands } from './commands/role.js';
import { registerScopeMapCommands } from './commands/scope-map.js';
import { registerTokenCommands } from './commands/token.js';
import { registerWebhookCommands } from './commands/webhook.js';
import type { CliDeps } from './context.js';
import { describeFailure, EXIT } from './errors.js';
import { addGlobalOptions } from './options.js';

/** Builds the `berth` command tree. A fresh one per run: commander keeps parse state. */
export function buildProgram(deps: CliDeps): Command {
  const program = new Command('berth');
  program
    .description(
      'Manage Berth container registries. Commands mirror `az acr`: replace `az acr` with `berth` in a script.',
    )
    .version(deps.version ?? 'dev', '-v, --version')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({
      writeOut: (text) => deps.io.stdout(text),
      writeErr: (text) => deps.io.stderr(text),
      outputError: (text, write) => write(`ERROR: ${text.replace(/^error: /, '')}`),
    })
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 1 operation failed, 2 usage error, 3 resource not found.
Run 'berth <command> --help' for a command's options.`,
    );
  registerLoginCommands(program, deps);
  registerRegistryCommands(program, deps);
  registerCheckHealthCommand(program, deps);
  registerRepositoryCommands(program, deps);
  registerCredentialCommands(program, deps);
  registerNetworkRuleCommands(program, deps);
  registerIpSetCommands(program, deps);
  registerPrivateEndpointConnectionCommands(program, deps);
  registerAuditCommands(program, deps);
  registerRoleCommands(program, deps);
  registerScopeMapCommands(program, deps);
  registerTokenCommands(program, deps);
  registerGcCommands(program, deps);
  registerWebhookCommands(program, deps);
  addGlobalOptions(program);
  return program;
}

/** Runs one `berth` invocation (argv without node and script) and returns its exit code. */
export async function run(argv: readonly string[], deps: CliDeps): Promise<number> {
  const program = buildProgram(deps);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; everything else commander rejects is a usage error (argparse's 2).
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const { message, exitCode } = describeFailure(error);
    deps.io.stderr(`ERROR: ${message}\n`);
    return exitCode;
  }
}
