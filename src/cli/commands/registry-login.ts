// `berth login --name R`: the mirror of `az acr login --name R`. It asks the management API for a
// short-lived token for the registry and signs the local docker (or podman) in with it, or prints it
// with `--expose-token` for tools that log in themselves.

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { CommandContext, GlobalOptions } from '../context.js';
import { CliError } from '../errors.js';

export interface RegistryLoginOptions extends GlobalOptions {
  name: string;
  exposeToken?: boolean;
}

/** Runs `berth login -n R [--expose-token]`. */
export async function registryLogin(options: RegistryLoginOptions, ctx: CommandContext): Promise<void> {
  const token = await ctx.client().loginToken(options.name);
  if (options.exposeToken) {
    if (!ctx.options.onlyShowErrors)
      ctx.warn(
        `you can sign in with: docker login ${token.server} --username ${token.username} --password-stdin <<< "$TOKEN"`,
      );
    ctx.print({ accessToken: token.accessToken, loginServer: token.server, username: token.username });
    return;
  }
  const env = ctx.deps.env;
  const command =
    env.DOCKER_COMMAND ??
    (onPath('docker', env.PATH) ? 'docker' : onPath('podman', env.PATH) ? 'podman' : undefined);
  if (!command)
    throw new CliError(
      'neither docker nor podman was found on PATH; use --expose-token and sign in with your tool',
    );
  const result = await runWithInput(
    command,
    ['login', token.server, '--username', token.username, '--password-stdin'],
    token.accessToken,
    env,
  );
  if (result.code !== 0)
    throw new CliError(
      `${command} login ${token.server} failed: ${result.output.trim() || `exit ${result.code}`}`,
    );
  if (!ctx.options.onlyShowErrors) ctx.deps.io.stderr(`Login Succeeded (${command}, ${token.server})\n`);
}

function onPath(name: string, path: string | undefined): boolean {
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

function runWithInput(
  command: string,
  args: string[],
  input: string,
  env: Record<string, string | undefined>,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, output: Buffer.concat(chunks).toString('utf8').slice(0, 4000) }),
    );
    child.stdin.on('error', () => undefined);
    child.stdin.end(`${input}\n`);
  });
}
