import { spawnSync } from 'node:child_process';
import { accessSync, chownSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import pg from 'pg';
import { REQUIRE_E2E, findTool } from './e2e.js';
import { freePort } from './net.js';

/** Where Debian puts the server binaries (they are not on PATH there). */
const PG_BIN_DIRS = [
  '/usr/lib/postgresql/15/bin',
  '/usr/lib/postgresql/16/bin',
  '/usr/lib/postgresql/17/bin',
];

/** A throwaway PostgreSQL cluster on a loopback port, for this test process. */
export interface PostgresCluster {
  host: string;
  port: number;
  user: string;
  /** A URL for `database` in this cluster. */
  url(database: string): string;
}

let cluster: Promise<PostgresCluster | undefined> | undefined;
let counter = 0;

function pgBinary(name: string): string | undefined {
  for (const dir of PG_BIN_DIRS) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not this version
    }
  }
  return findTool(name);
}

/**
 * Starts the cluster once per test process: `initdb` into a temporary directory, `pg_ctl start` on a
 * free loopback port with its socket in that directory. As root (CI) the server runs as the `postgres`
 * user through `runuser`, since PostgreSQL refuses to run as root. Stopped (`-m immediate`) and removed
 * when the process exits. Durability settings are off: tests kill Berth, never the database.
 */
async function startCluster(): Promise<PostgresCluster | undefined> {
  const initdb = pgBinary('initdb');
  const pgCtl = pgBinary('pg_ctl');
  if (!initdb || !pgCtl) return undefined;
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'berth-pg-'));
  const data = join(dir, 'data');
  const run = (command: string, args: string[]) => {
    const argv = asRoot ? ['-u', 'postgres', '--', command, ...args] : args;
    const result = spawnSync(asRoot ? 'runuser' : command, argv, { encoding: 'utf8', timeout: 60_000 });
    if (result.status !== 0)
      throw new Error(
        `${command} ${args.join(' ')} failed: ${result.stderr || result.stdout || result.error}`,
      );
  };
  if (asRoot) {
    const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gids = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (ids.status !== 0) throw new Error("the postgres user does not exist (install Debian's postgresql)");
    chownSync(dir, Number(ids.stdout.trim()), Number(gids.stdout.trim()));
  }
  const user = 'berth';
  run(initdb, ['-D', data, '-U', user, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const port = await freePort();
  const options = [
    `-c listen_addresses=127.0.0.1`,
    `-p ${port}`,
    `-k ${dir}`,
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=300',
  ].join(' ');
  run(pgCtl, ['-D', data, '-o', options, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  process.on('exit', () => {
    const argv = ['-D', data, '-m', 'immediate', '-w', 'stop'];
    spawnSync(asRoot ? 'runuser' : pgCtl, asRoot ? ['-u', 'postgres', '--', pgCtl, ...argv] : argv, {
      timeout: 30_000,
    });
    rmSync(dir, { recursive: true, force: true });
  });
  const host = '127.0.0.1';
  return { host, port, user, url: (database) => `postgres://${user}@${host}:${port}/${database}` };
}

/** The test process's cluster (started on first use), or undefined when PostgreSQL is not installed. */
export function postgresCluster(): Promise<PostgresCluster | undefined> {
  cluster ??= startCluster();
  return cluster;
}

/**
 * The URL of a new, empty database in the test process's cluster. When PostgreSQL is not installed the
 * test is skipped with a printed reason, or, under `BERTH_REQUIRE_E2E=1` (CI), fails. Callers return
 * when this gives undefined.
 */
export async function postgresDatabase(t: TestContext): Promise<string | undefined> {
  const server = await postgresCluster();
  if (!server) {
    const reason = 'PostgreSQL (initdb, pg_ctl) is not installed';
    if (REQUIRE_E2E) throw new Error(`${reason}, and BERTH_REQUIRE_E2E=1 requires every test to run`);
    process.stderr.write(`skipping ${t.name}: ${reason}\n`);
    t.skip(reason);
    return undefined;
  }
  return createDatabase(server);
}

/** Creates a new, empty database in `server` and returns its URL (for factories that get no context). */
export async function createDatabase(server: PostgresCluster): Promise<string> {
  const name = `berth_${process.pid}_${++counter}`;
  const client = new pg.Client({ connectionString: server.url('postgres') });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return server.url(name);
}
