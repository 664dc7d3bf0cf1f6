// The stored login profile: `$BERTH_CONFIG_DIR/config.json`, else `$XDG_CONFIG_HOME/berth/config.json`,
// else `~/.config/berth/config.json`. It may hold a password or API key, so the directory is 0700 and
// the file 0600, written atomically (temp file + rename) so a crash never leaves half a file.

import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Credentials } from '../api-client/index.js';
import { CliError } from './errors.js';

/** What `berth login` stores. */
export interface Profile {
  server: string;
  username?: string;
  password?: string;
  apiKey?: string;
}

/** The directory holding `config.json`. */
export function configDir(env: Record<string, string | undefined>, homeDir: string): string {
  if (env.BERTH_CONFIG_DIR) return env.BERTH_CONFIG_DIR;
  const base = env.XDG_CONFIG_HOME || join(homeDir, '.config');
  return join(base, 'berth');
}

/** Reads and writes the profile in one configuration directory. */
export class ProfileStore {
  readonly dir: string;
  readonly file: string;

  constructor(dir: string) {
    this.dir = dir;
    this.file = join(dir, 'config.json');
  }

  /** The stored profile, or undefined when nobody has logged in. */
  read(): Profile | undefined {
    if (!existsSync(this.file)) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (error) {
      throw new CliError(`cannot read ${this.file}: ${(error as Error).message}; run 'berth login' again`);
    }
    const profile = (parsed as { profile?: unknown } | null)?.profile;
    if (!profile || typeof profile !== 'object' || typeof (profile as Profile).server !== 'string') {
      throw new CliError(`${this.file} holds no valid profile; run 'berth login' again`);
    }
    return profile as Profile;
  }

  /** Stores `profile`, replacing any previous one. */
  write(profile: Profile): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    const temp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify({ version: 1, profile }, null, 2)}\n`, { mode: 0o600 });
    chmodSync(temp, 0o600);
    renameSync(temp, this.file);
  }

  /** Forgets the profile; true when there was one. */
  remove(): boolean {
    if (!existsSync(this.file)) return false;
    rmSync(this.file);
    return true;
  }
}

/** Where to connect and as whom, after flags, environment and the stored profile are combined. */
export interface Connection {
  server: string;
  credentials: Credentials;
}

/**
 * Resolves the server (`--server` > `BERTH_SERVER` > profile) and the credentials
 * (`BERTH_API_KEY` > `BERTH_USERNAME`+`BERTH_PASSWORD` > profile).
 */
export function resolveConnection(
  flags: { server?: string },
  env: Record<string, string | undefined>,
  profile: Profile | undefined,
): Connection {
  const server = flags.server || env.BERTH_SERVER || profile?.server;
  if (!server) {
    throw new CliError(
      "no server configured: run 'berth login --server URL ...', or set BERTH_SERVER or --server",
    );
  }
  return { server: normalizeServer(server), credentials: resolveCredentials(env, profile) };
}

function resolveCredentials(
  env: Record<string, string | undefined>,
  profile: Profile | undefined,
): Credentials {
  if (env.BERTH_API_KEY) return { kind: 'apiKey', apiKey: env.BERTH_API_KEY };
  if (env.BERTH_USERNAME && env.BERTH_PASSWORD !== undefined) {
    return { kind: 'basic', username: env.BERTH_USERNAME, password: env.BERTH_PASSWORD };
  }
  if (profile?.apiKey) return { kind: 'apiKey', apiKey: profile.apiKey };
  if (profile?.username && profile.password !== undefined) {
    return { kind: 'basic', username: profile.username, password: profile.password };
  }
  return { kind: 'none' };
}

/** Accepts `host:port` as well as a URL; a missing scheme means http. */
export function normalizeServer(server: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `http://${server}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new CliError(`'${server}' is not a valid server URL`, 2);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`server URL must be http or https, not '${url.protocol}'`, 2);
  }
  return url.href.replace(/\/+$/, '');
}
