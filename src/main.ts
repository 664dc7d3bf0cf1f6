#!/usr/bin/env -S node --initial-heap-size=64
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { backupDataDir, restoreBackup } from './backup.js';
import { ConfigError, loadConfig } from './config.js';
import { startBerth } from './server.js';

/** `npm start`: run Berth on the configured listeners until SIGINT/SIGTERM. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`berth: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const [command, ...args] = process.argv.slice(2);
  if (command === 'backup' || command === 'restore')
    return maintenance(command, args, config.dataDir, config.secretKeyFile);
  if (command !== undefined) {
    process.stderr.write(`berth-server: unknown command '${command}' (use backup or restore)\n`);
    process.exit(2);
  }
  let berth;
  try {
    berth = await startBerth(config);
  } catch (error) {
    // A setting that names something unusable (an unreachable database, a foreign key file) is the
    // operator's to fix: its message says which, without a stack trace.
    if (error instanceof ConfigError) {
      process.stderr.write(`berth: ${error.message}
`);
      process.exit(2);
    }
    throw error;
  }
  // The safety net for a bug that escaped every request's own handling: it is logged loudly and
  // counted (a rising count is a bug to fix), while the other requests in flight carry on.
  let uncaught = 0;
  const report = (kind: string) => (error: unknown) => {
    uncaught++;
    berth.logger.error({ err: error, kind, count: uncaught }, 'uncaught error');
  };
  process.on('uncaughtException', report('uncaughtException'));
  process.on('unhandledRejection', report('unhandledRejection'));
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    berth.logger.info({ signal }, 'berth stopping');
    berth.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** `berth-server backup --to DIR` and `berth-server restore --from DIR [--data-dir DIR]`. */
async function maintenance(
  command: 'backup' | 'restore',
  args: string[],
  dataDir: string,
  keyFile: string | undefined,
): Promise<void> {
  let values;
  try {
    values = parseArgs({
      args,
      options: { to: { type: 'string' }, from: { type: 'string' }, 'data-dir': { type: 'string' } },
    }).values;
  } catch (error) {
    process.stderr.write(`berth-server: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const summary =
    command === 'backup'
      ? values.to
        ? await backupDataDir(dataDir, values.to, keyFile && resolve(keyFile))
        : usage('backup needs --to DIR')
      : values.from
        ? await restoreBackup(values.from, values['data-dir'] ?? dataDir, keyFile && resolve(keyFile))
        : usage('restore needs --from DIR');
  process.stdout.write(`${JSON.stringify({ command, ...summary })}\n`);
}

function usage(message: string): never {
  process.stderr.write(`berth-server: ${message}\n`);
  process.exit(2);
}

main().catch((error: unknown) => {
  process.stderr.write(`berth: failed to start: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
