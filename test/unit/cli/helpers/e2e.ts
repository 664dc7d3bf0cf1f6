// Shared by test/e2e/cli-*.test.ts: runs the `berth` executable as a subprocess, and starts the
// server it talks to — the real Berth (startTestBerth) once it exposes `managementUrl`, else the fake.

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as serverHelpers from '../../../helpers/server.js';
import { FAKE_PASSWORD, FAKE_USER, startFakeApi } from './fake-api.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const BUILT = join(ROOT, 'dist/cli/index.js');
const SOURCE = join(ROOT, 'src/cli/index.ts');

/**
 * The command that runs `berth`: the built `dist/cli/index.js` when it is newer than every CLI source
 * file (after `npm run build`), else the TypeScript source through tsx, so a stale build never hides
 * a change. `BERTH_E2E_CLI=dist|src` forces one.
 */
export function berthCommand(): { file: string; args: string[]; kind: 'dist' | 'src' } {
  const forced = process.env.BERTH_E2E_CLI;
  const useDist = forced === 'dist' || (forced !== 'src' && builtIsFresh());
  return useDist
    ? { file: process.execPath, args: [BUILT], kind: 'dist' }
    : { file: process.execPath, args: ['--import', 'tsx', SOURCE], kind: 'src' };
}

function builtIsFresh(): boolean {
  let built: number;
  try {
    built = statSync(BUILT).mtimeMs;
  } catch {
    return false;
  }
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true }).map((entry) =>
        entry.isDirectory() ? newest(join(dir, entry.name)) : statSync(join(dir, entry.name)).mtimeMs,
      ),
    );
  return built >= Math.max(newest(join(ROOT, 'src/cli')), newest(join(ROOT, 'src/api-client')));
}

export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `berth ...args` with exactly `env` (plus PATH/HOME safety), stdin not a terminal. */
export function runBerth(
  args: string[],
  env: Record<string, string>,
  input?: string,
): Promise<ProcessResult> {
  const command = berthCommand();
  return new Promise((resolvePromise) => {
    const child = execFile(
      command.file,
      [...command.args, ...args],
      { env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env }, cwd: ROOT, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolvePromise({ code, stdout, stderr });
      },
    );
    child.stdin?.end(input ?? '');
  });
}

/** A private config dir and a HOME that is not the real one, so no test can touch ~/.config/berth. */
export function isolatedEnv(): { configDir: string; env: Record<string, string> } {
  const base = mkdtempSync(join(tmpdir(), 'berth-cli-e2e-'));
  const configDir = join(base, 'config');
  return { configDir, env: { BERTH_CONFIG_DIR: configDir, HOME: join(base, 'home') } };
}

/** The server under test. */
export interface E2EServer {
  /** True for the real Berth; false for the fake management API (data-plane tests are skipped). */
  real: boolean;
  managementUrl: string;
  /** The public data plane (real server only). */
  dataUrl: string | undefined;
  username: string;
  password: string;
  stop(): Promise<void>;
}

/** Starts the real Berth when it has a management API, else the fake (`BERTH_E2E_FAKE=1` forces it). */
export async function startE2EServer(): Promise<E2EServer> {
  const berth = await serverHelpers.startTestBerth();
  const managementUrl = (berth as { managementUrl?: string }).managementUrl;
  if (managementUrl && process.env.BERTH_E2E_FAKE !== '1') {
    const exported = serverHelpers as unknown as Record<string, unknown>;
    return {
      real: true,
      managementUrl,
      dataUrl: berth.url,
      username: 'admin',
      password:
        typeof exported.TEST_ADMIN_PASSWORD === 'string'
          ? exported.TEST_ADMIN_PASSWORD
          : 'test-admin-password',
      stop: () => berth.stop(),
    };
  }
  await berth.stop();
  const fake = await startFakeApi();
  fake.seed('default');
  return {
    real: false,
    managementUrl: fake.url,
    dataUrl: undefined,
    username: FAKE_USER,
    password: FAKE_PASSWORD,
    stop: () => fake.close(),
  };
}
