// A Docker engine of the test's own: dockerd started as root with no networking of its own (no
// iptables, no bridge), vfs storage, and every path (data root, exec root, pid file, socket) in a
// temporary directory, so it neither needs nor touches the machine's docker. Stopped after the test.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './e2e.js';

/** A running private dockerd and the environment that points the docker CLI at it. */
export interface TestDockerd {
  /** DOCKER_HOST and DOCKER_CONFIG for the `docker` CLI. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Starts dockerd with `--insecure-registry` for each of `registries` (host:port), in a directory of
 * its own that `stop()` removes once the engine is gone (dockerd mounts its data root, so the test's
 * own temporary directory, removed first, must not hold it).
 */
export async function startDockerd(
  dockerd: string,
  docker: string,
  registries: string[],
): Promise<TestDockerd> {
  const root = mkdtempSync(join(tmpdir(), 'berth-dockerd-'));
  for (const sub of ['data', 'exec', 'config']) mkdirSync(join(root, sub), { recursive: true });
  const socket = join(root, 'docker.sock');
  const log = openSync(join(root, 'dockerd.log'), 'a');
  const args = [
    '--iptables=false',
    '--ip6tables=false',
    '--bridge=none',
    '--storage-driver',
    'vfs',
    '--data-root',
    join(root, 'data'),
    '--exec-root',
    join(root, 'exec'),
    '--pidfile',
    join(root, 'docker.pid'),
    '-H',
    `unix://${socket}`,
    ...registries.flatMap((r) => ['--insecure-registry', r]),
  ];
  const child: ChildProcess = spawn(dockerd, args, { stdio: ['ignore', log, log], detached: false });
  const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(root, 'config') };
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), sleep(20_000).then(() => false)]);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    closeSync(log);
    if (process.env.BERTH_KEEP_E2E_TMP !== '1') rmSync(root, { recursive: true, force: true });
  };
  // Bounded wait for the engine to answer (it creates its own containerd on first start).
  for (let attempt = 0; attempt < 120; attempt++) {
    if (child.exitCode !== null) break;
    const info = await run(docker, ['version', '--format', '{{.Server.Version}}'], {
      env,
      timeoutMs: 10_000,
    });
    if (info.code === 0) return { env, stop };
    await sleep(500);
  }
  await stop();
  throw new Error(`dockerd did not start:\n${readFileSync(join(root, 'dockerd.log'), 'utf8').slice(-4000)}`);
}
