import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { REQUIRE_E2E } from './e2e.js';
import { freePort } from './net.js';

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** A fresh container on the test process's Azurite. */
export interface AzuriteContainer {
  connectionString: string;
  container: string;
}

const BINARY = fileURLToPath(new URL('../../node_modules/.bin/azurite-blob', import.meta.url));
/** Bounded wait for Azurite to answer after it was spawned. */
const START_TIMEOUT_MS = 30_000;

let server: Promise<{ port: number } | undefined> | undefined;
let counter = 0;

/** Whether anything answers HTTP on the port (any status: Azurite is up). */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: `/${AZURITE_ACCOUNT}?comp=list`, timeout: 1000 },
      (res) => {
        res.resume();
        resolve(true);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * Starts Azurite's blob service once per test process on a free loopback port with a temporary
 * workspace, waits until it answers, and stops it (and removes the workspace) when the process exits.
 */
async function startAzurite(): Promise<{ port: number } | undefined> {
  try {
    accessSync(BINARY, constants.X_OK);
  } catch {
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'berth-azurite-'));
  const port = await freePort();
  const child: ChildProcess = spawn(
    BINARY,
    [
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(port),
      '-l',
      dir,
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--silent',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < 4000) stderr += chunk.toString();
  });
  // Neither the child nor its pipe may keep the test process alive: it stops Azurite on exit.
  child.unref();
  (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  process.on('exit', () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await answers(port))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`azurite did not start on port ${port}: ${stderr || 'no output'}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { port };
}

/** The process's Azurite (started on first use, also by benchmarks), or undefined when not installed. */
export function azuriteServer(): Promise<{ port: number } | undefined> {
  server ??= startAzurite();
  return server;
}

/** The development connection string of an Azurite blob service on `port`. */
export function azuriteConnectionString(port: number): string {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};` +
    `BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`
  );
}

/**
 * A connection string and the name of a container no other test uses (created by the store on first
 * use) on the test process's Azurite. When Azurite is not installed the test is skipped with a printed
 * reason, or, under `BERTH_REQUIRE_E2E=1` (CI), fails. Callers return when this gives undefined.
 */
export async function azuriteContainer(t: TestContext): Promise<AzuriteContainer | undefined> {
  const running = await azuriteServer();
  if (!running) {
    const reason = 'azurite is not installed (npm install runs it from node_modules/.bin)';
    if (REQUIRE_E2E) throw new Error(`${reason}, and BERTH_REQUIRE_E2E=1 requires every test to run`);
    process.stderr.write(`skipping ${t.name}: ${reason}\n`);
    t.skip(reason);
    return undefined;
  }
  return {
    connectionString: azuriteConnectionString(running.port),
    container: `berth-${process.pid}-${++counter}`,
  };
}
