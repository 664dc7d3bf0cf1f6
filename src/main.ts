#!/usr/bin/env -S node --initial-heap-size=64
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
  const berth = await startBerth(config);
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

main().catch((error: unknown) => {
  process.stderr.write(`berth: failed to start: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
