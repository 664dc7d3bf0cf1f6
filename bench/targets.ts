import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { send, useCredentials } from './http.js';

/** A registry under test, running in its own process on loopback. */
export interface Target {
  name: 'berth' | 'distribution';
  /** `http://127.0.0.1:<port>` */
  url: string;
  pid: number;
  /** Berth only: its management API and the owner's `Authorization` header. */
  management?: { url: string; authorization: string };
  /** Stops the process (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
}

/** An unused loopback TCP port (bound once and released, so a race is possible but unlikely). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `node dist/main.js` with its own data directory; `workDir` is its cwd (no stray config file). */
export async function startBerthProcess(
  root: string,
  workDir: string,
  nodeArgs: string[] = [],
  /** A configuration file for Berth (settings without an environment variable). */
  configFile = '',
): Promise<Target> {
  const [port, managementPort] = [await freePort(), await freePort()];
  const dataDir = join(workDir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const adminPassword = randomBytes(18).toString('base64url');
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'dist', 'main.js')], {
    cwd: workDir,
    env: {
      ...process.env,
      BERTH_LISTEN: `127.0.0.1:${port}`,
      BERTH_MANAGEMENT_LISTEN: `127.0.0.1:${managementPort}`,
      BERTH_DATA_DIR: dataDir,
      BERTH_LOG_LEVEL: 'warn',
      BERTH_CONFIG: configFile,
      // Chosen here so Berth does not print a generated owner password on first start.
      BERTH_ADMIN_PASSWORD: adminPassword,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const authorization = `Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}`;
  // Every registry requires sign-in: the bench's own requests carry the owner's credentials.
  useCredentials(`http://127.0.0.1:${port}`, authorization);
  const target = await ready('berth', child, `http://127.0.0.1:${port}`);
  target.management = { url: `http://127.0.0.1:${managementPort}`, authorization };
  return target;
}

/**
 * Starts the CNCF distribution registry with a minimal filesystem configuration in `workDir`; with
 * `blobDescriptorCache`, also its in-memory blob descriptor cache (as in Debian's default config).
 */
export async function startDistribution(
  binary: string,
  workDir: string,
  blobDescriptorCache = false,
): Promise<Target> {
  const port = await freePort();
  const dataDir = join(workDir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const configPath = join(workDir, 'config.yml');
  // Access logs are off because Berth at level warn logs no requests either.
  writeFileSync(
    configPath,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dataDir}`,
      '  delete:',
      '    enabled: true',
      ...(blobDescriptorCache ? ['  cache:', '    blobdescriptor: inmemory'] : []),
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('REGISTRY_')));
  const child = spawn(binary, ['serve', configPath], {
    cwd: workDir,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return ready('distribution', child, `http://127.0.0.1:${port}`);
}

/** Whether the distribution binary is installed. */
export function distributionInstalled(binary: string): boolean {
  return existsSync(binary);
}

/** Waits (bounded: 100 tries, ~15 s) until `GET /v2/` answers 200, keeping the last stderr for errors. */
async function ready(name: Target['name'], child: ChildProcess, url: string): Promise<Target> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = code ?? (signal ? -1 : 0);
      resolve();
    });
  });
  const target: Target = {
    name,
    url,
    pid: child.pid ?? 0,
    async stop() {
      if (exited !== undefined) return;
      child.kill('SIGTERM');
      const stopped = await Promise.race([exit.then(() => true), sleep(10_000).then(() => false)]);
      if (!stopped) {
        child.kill('SIGKILL');
        await Promise.race([exit, sleep(5_000)]);
      }
    },
  };
  for (let attempt = 0; attempt < 100; attempt++) {
    if (exited !== undefined) break;
    try {
      const response = await send(`${url}/v2/`, { timeoutMs: 1000 });
      if (response.status === 200) return target;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await target.stop();
  throw new Error(`${name} did not start (exit ${String(exited)}): ${stderr.trim() || 'no output'}`);
}
