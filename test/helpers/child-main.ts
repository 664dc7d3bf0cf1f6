// The entry point of a Berth run as a child process by test/helpers/child-server.ts: the
// configuration comes as JSON in BERTH_TEST_CONFIG, and the addresses go to stdout once listening.
// Unlike src/main.ts it installs no safety net, so an error that escapes a request ends the process
// and the test sees it.
import pino from 'pino';
import type { BerthConfig } from '../../src/config.js';
import { startBerth } from '../../src/server.js';

const config = JSON.parse(process.env.BERTH_TEST_CONFIG ?? '{}') as BerthConfig;
const berth = await startBerth(config, pino({ level: config.logLevel }, pino.destination(2)));
process.stdout.write(
  `BERTH_READY ${JSON.stringify({ urls: berth.urls, managementUrl: berth.managementUrl })}\n`,
);
process.on('SIGTERM', () => {
  void berth.close().then(() => process.exit(0));
});
