import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DEFAULT_CONFIG, type BerthConfig } from '../../src/config.js';
import { startBerth, type RunningBerth } from '../../src/server.js';

/** The owner account's password in every test server (user `admin`). */
export const TEST_ADMIN_PASSWORD = 'test-admin-password';

/** `Authorization` header value for the owner account of a test server. */
export const ADMIN_AUTH = `Basic ${Buffer.from(`admin:${TEST_ADMIN_PASSWORD}`).toString('base64')}`;

/** A Berth started in-process on an ephemeral loopback port with its own data directory. */
export interface TestBerth extends RunningBerth {
  url: string;
  dataDir: string;
  /** Stops the server and removes its data directory. */
  stop(): Promise<void>;
}

export type ConfigOverrides = Partial<Omit<BerthConfig, 'registry' | 'gc' | 'webhooks' | 'limits'>> & {
  registry?: Partial<BerthConfig['registry']>;
  gc?: Partial<BerthConfig['gc']>;
  webhooks?: Partial<BerthConfig['webhooks']>;
  limits?: Partial<BerthConfig['limits']>;
};

/** A test server's configuration: loopback, ephemeral ports, the test owner password, then `overrides`. */
export function testConfig(overrides: ConfigOverrides, dataDir: string, logLevel: string): BerthConfig {
  return {
    ...structuredClone(DEFAULT_CONFIG),
    listen: ['127.0.0.1:0'],
    managementListen: '127.0.0.1:0',
    logLevel: process.env.BERTH_TEST_LOG_LEVEL ?? logLevel,
    adminPassword: TEST_ADMIN_PASSWORD,
    ...overrides,
    dataDir,
    registry: { ...DEFAULT_CONFIG.registry, ...overrides.registry },
    gc: { ...DEFAULT_CONFIG.gc, ...overrides.gc },
    webhooks: { ...DEFAULT_CONFIG.webhooks, ...overrides.webhooks },
    limits: { ...DEFAULT_CONFIG.limits, ...overrides.limits },
  };
}

/** Starts Berth for a test. Pass `dataDir` to reuse one (restart tests). */
export async function startTestBerth(overrides: ConfigOverrides = {}): Promise<TestBerth> {
  const dataDir = overrides.dataDir ?? mkdtempSync(join(tmpdir(), 'berth-test-'));
  const config = testConfig(overrides, dataDir, 'silent');
  const berth = await startBerth(config, pino({ level: config.logLevel }));
  return {
    ...berth,
    url: berth.urls[0]!,
    dataDir,
    async stop() {
      await berth.close();
      if (!overrides.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
