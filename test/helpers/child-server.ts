import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testConfig, type ConfigOverrides } from './server.js';

/** A Berth in its own process, so a test can see it die, measure its memory or kill -9 it. */
export interface ChildBerth {
  url: string;
  managementUrl: string;
  dataDir: string;
  process: ChildProcess;
  /** Whether the process is still running. */
  alive(): boolean;
  /** How the process ended (undefined while running). */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** What the process wrote to stderr (its log), for failure messages. */
  stderr(): string;
  /** Resident memory of the process in bytes, from /proc. */
  rssBytes(): number;
  /** SIGKILL, and wait for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM, wait for the exit; removes the data directory unless it was given. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;

/** Starts Berth as a child process (`env` adds variables such as BERTH_TEST_CRASH_AT). */
export async function startChildBerth(
  overrides: ConfigOverrides = {},
  env: Record<string, string> = {},
): Promise<ChildBerth> {
  const dataDir = overrides.dataDir ?? mkdtempSync(join(tmpdir(), 'berth-child-'));
  const config = testConfig(overrides, dataDir, 'warn');
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'child-main.ts')], {
    env: { ...process.env, ...env, BERTH_TEST_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let ended: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      ended = { code, signal };
      resolve();
    }),
  );
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-20_000);
  });
  const ready = await new Promise<{ urls: string[]; managementUrl: string }>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`child Berth did not start: ${stderr}`)),
      START_TIMEOUT_MS,
    );
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /BERTH_READY (.*)\n/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(JSON.parse(match[1]!) as { urls: string[]; managementUrl: string });
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`child Berth exited during start (${JSON.stringify(ended)}): ${stderr}`));
    });
  });
  return {
    url: ready.urls[0]!,
    managementUrl: ready.managementUrl,
    dataDir,
    process: child,
    alive: () => ended === undefined,
    exit: () => ended,
    stderr: () => stderr,
    rssBytes() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kib = /VmRSS:\s+(\d+) kB/.exec(status);
      return kib ? Number(kib[1]) * 1024 : 0;
    },
    async kill9() {
      if (ended === undefined) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (ended === undefined) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      if (!overrides.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
