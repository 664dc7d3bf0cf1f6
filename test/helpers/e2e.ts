import { spawn } from 'node:child_process';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';
import { ADMIN_AUTH, TEST_ADMIN_PASSWORD } from './server.js';

/** Set to `1` (as CI does) to make a missing client tool fail the test instead of skipping it. */
export const REQUIRE_E2E = process.env.BERTH_REQUIRE_E2E === '1';

/** Where an executable named `name` is on PATH, or undefined. */
export function findTool(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * The path of a client tool the test needs. When it is missing the test is skipped, loudly (a line on
 * stderr and the skip reason in the report), or, under `BERTH_REQUIRE_E2E=1`, fails by throwing.
 * Callers return when this gives undefined.
 */
export function requireTool(t: TestContext, name: string): string | undefined {
  const path = findTool(name);
  if (path) return path;
  const reason = `${name} is not installed`;
  if (REQUIRE_E2E)
    throw new Error(`${reason}, and BERTH_REQUIRE_E2E=1 requires every end-to-end test to run`);
  process.stderr.write(`skipping ${t.name}: ${reason}\n`);
  t.skip(reason);
  return undefined;
}

/** What a finished subprocess left behind. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Whether it was killed for running past its timeout. */
  timedOut: boolean;
  durationMs: number;
}

export interface RunOptions {
  /** Killed (SIGKILL) after this long; default two minutes. */
  timeoutMs?: number;
  /** Added to (not replacing) the test process's environment. */
  env?: Record<string, string>;
  cwd?: string;
  input?: string;
}

/** Runs a command to completion with a timeout, capturing its output. Never rejects for a non-zero exit. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (process.env.BERTH_E2E_TRACE === '1') {
        process.stderr.write(
          `e2e: ${cmd} ${args.join(' ')} -> ${code ?? signal} in ${Date.now() - started} ms\n`,
        );
      }
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        timedOut,
        durationMs: Date.now() - started,
      });
    });
    // Tools that might prompt see end of input at once instead of waiting for a terminal.
    child.stdin.on('error', () => undefined); // EPIPE when the tool exits without reading
    child.stdin.end(opts.input ?? '');
  });
}

/** Like `run`, but throws (with the command and its output) unless it exits 0. */
export async function runOk(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const result = await run(cmd, args, opts);
  if (result.code !== 0) throw new Error(describeFailure(cmd, args, result));
  return result;
}

/** A readable account of a failed command, for assertion messages. */
export function describeFailure(cmd: string, args: string[], result: RunResult): string {
  const status = result.timedOut ? 'timed out' : `exited with ${result.code ?? result.signal}`;
  return [
    `${cmd} ${args.join(' ')} ${status}`,
    `stdout: ${result.stdout.trim()}`,
    `stderr: ${result.stderr.trim()}`,
  ].join('\n');
}

/** A fresh directory for one test, removed when the test ends (kept with `BERTH_KEEP_E2E_TMP=1`). */
export function testTempDir(t: TestContext, prefix = 'berth-e2e-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => {
    if (process.env.BERTH_KEEP_E2E_TMP === '1') process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/**
 * Configuration for the containers tools (skopeo, podman, buildah) that lives in `dir`, so no test reads
 * or writes the machine's own files under /etc/containers: an accept-anything signature policy, a
 * registries.conf without short-name aliases or mirrors, a storage.conf with vfs under `dir`, and a
 * containers.conf that needs neither systemd nor journald.
 */
export interface ContainersConfig {
  policy: string;
  /** Environment variables that point the tools at these files. */
  env: Record<string, string>;
  /** Global flags for podman and buildah: vfs storage rooted in `dir`. */
  storageFlags: string[];
}

/** Writes an isolated containers configuration into `dir` (see `ContainersConfig`). */
export function writeContainersConfig(dir: string): ContainersConfig {
  const root = join(dir, 'storage');
  const runroot = join(dir, 'run');
  const policy = join(dir, 'policy.json');
  writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const registries = join(dir, 'registries.conf');
  writeFileSync(registries, 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n');
  const storage = join(dir, 'storage.conf');
  writeFileSync(storage, `[storage]\ndriver = "vfs"\nrunroot = "${runroot}"\ngraphroot = "${root}"\n`);
  const xdgRuntime = join(dir, 'xdg-runtime');
  mkdirSync(xdgRuntime, { mode: 0o700, recursive: true });
  const auth = join(dir, 'auth.json');
  writeFileSync(auth, JSON.stringify({ auths: {} }));
  const containers = join(dir, 'containers.conf');
  writeFileSync(containers, '[engine]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n');
  return {
    policy,
    env: {
      CONTAINERS_REGISTRIES_CONF: registries,
      CONTAINERS_STORAGE_CONF: storage,
      CONTAINERS_CONF: containers,
      // Where rootless tools would keep auth and caches; harmless as root, and keeps $HOME clean.
      XDG_RUNTIME_DIR: xdgRuntime,
      REGISTRY_AUTH_FILE: auth,
    },
    storageFlags: ['--storage-driver', 'vfs', '--root', root, '--runroot', runroot],
  };
}

/**
 * Signs the containers tools (skopeo, podman, buildah) in to `host` by writing its credentials into
 * the isolated auth file, as `podman login` would; the test owner's by default.
 */
export function signInContainers(
  containers: ContainersConfig,
  host: string,
  username = 'admin',
  password = TEST_ADMIN_PASSWORD,
): void {
  const file = containers.env.REGISTRY_AUTH_FILE!;
  const current = JSON.parse(readFileSync(file, 'utf8')) as { auths: Record<string, { auth: string }> };
  current.auths[host] = { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  writeFileSync(file, JSON.stringify(current));
}

/** `skopeo copy` arguments that push every platform of a layout's `v1` tag to `destination` over plain HTTP. */
export function pushLayoutArgs(
  containers: ContainersConfig,
  layoutDir: string,
  destination: string,
): string[] {
  return [
    'copy',
    '--policy',
    containers.policy,
    '--all',
    '--dest-tls-verify=false',
    `oci:${layoutDir}:v1`,
    destination,
  ];
}

/** `host:port` of a Berth URL, as the containers tools want it in image references. */
export function registryHost(url: string): string {
  return new URL(url).host;
}

/** A whole HTTP response. */
export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed as JSON. */
  json<T = unknown>(): T;
}

/**
 * One HTTP(S) request on its own connection (`Connection: close`), read to the end. Tests use this
 * rather than `fetch` so no pooled keep-alive socket is left open when the server is stopped: a
 * response still finishing when `close()` runs keeps the listener open until the keep-alive timeout.
 */
export function httpGet(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    ca?: Buffer;
    timeoutMs?: number;
    /** Send no credentials (by default `/v2/` requests carry the test owner's). */
    anonymous?: boolean;
  } = {},
): Promise<HttpResponse> {
  const target = new URL(url);
  const signIn =
    !options.anonymous &&
    target.pathname.startsWith('/v2') &&
    !Object.keys(options.headers ?? {}).some((name) => name.toLowerCase() === 'authorization');
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: options.method ?? 'GET',
        headers: {
          ...(signIn ? { Authorization: ADMIN_AUTH } : {}),
          ...options.headers,
          Connection: 'close',
        },
        agent: false,
        timeout: options.timeoutMs ?? 30_000,
        ...(options.ca ? { ca: options.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: <T>() => JSON.parse(body.toString('utf8')) as T,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${req.method} ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
