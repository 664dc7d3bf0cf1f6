// `berth login` / `berth logout`: the stored profile. Login verifies the credentials with
// `GET /api/whoami` before anything is written, so a typo never becomes the saved profile.

import type { Command } from 'commander';
import type { Credentials } from '../../api-client/index.js';
import type { CliDeps, CommandContext, GlobalOptions } from '../context.js';
import { normalizeServer, type Profile } from '../config.js';
import { UsageError } from '../errors.js';
import { action, leafCommand } from '../options.js';
import { registryLogin } from './registry-login.js';

interface LoginOptions extends GlobalOptions {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  apiKey?: string;
  name?: string;
  exposeToken?: boolean;
}

/** Registers `berth login` and `berth logout`. */
export function registerLoginCommands(program: Command, deps: CliDeps): void {
  leafCommand(
    program,
    'login',
    'Sign the CLI in to a Berth server (store the profile); with --name, sign docker/podman in to a registry.',
  )
    .option('-n, --name <registry>', 'sign docker/podman in to this registry, as `az acr login --name`')
    .option('--expose-token', 'with --name: print the token instead of running docker login')
    .option('-u, --username <user>', 'user account name')
    .option('-p, --password <password>', 'password (prefer --password-stdin or the prompt)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--api-key <key>', 'an API key instead of a user account')
    .addHelpText(
      'after',
      `
The server comes from --server (or BERTH_SERVER). Without flags, BERTH_API_KEY or
BERTH_USERNAME/BERTH_PASSWORD are used; on a terminal, missing values are asked for.
The profile is stored in $BERTH_CONFIG_DIR/config.json (default ~/.config/berth/config.json), mode 0600.

Two sign-ins, one command:
  berth login --server URL ...   signs this CLI in to the management API (stored profile).
  berth login --name R           uses that profile to get a short-lived token for registry R and runs
                                 'docker login' with it (DOCKER_COMMAND=podman to use podman);
                                 --expose-token prints {accessToken, loginServer, username} instead.

Examples:
  berth login --server http://127.0.0.1:5080 --username admin --password-stdin < secret.txt
  berth login --server https://berth.example.com --api-key "$BERTH_KEY"
  berth login --name myregistry
  berth login --name myregistry --expose-token --query accessToken -o tsv`,
    )
    .action(
      action<LoginOptions>(deps, (options, ctx) =>
        options.name !== undefined
          ? registryLogin({ ...options, name: options.name }, ctx)
          : login(options, ctx),
      ),
    );

  leafCommand(program, 'logout', 'Forget the stored profile.').action(
    action<GlobalOptions>(deps, async (_options, ctx) => {
      if (!ctx.profiles.remove()) ctx.warn('not logged in; nothing to forget');
    }),
  );
}

async function login(options: LoginOptions, ctx: CommandContext): Promise<void> {
  const env = ctx.deps.env;
  const stored = safeRead(ctx);
  const rawServer = options.server || env.BERTH_SERVER || stored?.server;
  if (!rawServer) throw new UsageError('login needs --server URL (or BERTH_SERVER)');
  const server = normalizeServer(rawServer);
  const credentials = await chooseCredentials(options, ctx);
  const whoami = await ctx.makeClient(server, credentials).whoami();

  const profile: Profile = { server };
  if (credentials.kind === 'apiKey') profile.apiKey = credentials.apiKey;
  if (credentials.kind === 'basic') {
    profile.username = credentials.username;
    profile.password = credentials.password;
  }
  ctx.profiles.write(profile);
  if (!ctx.options.onlyShowErrors) {
    ctx.deps.io.stderr(`Logged in to ${server} as ${whoami.name}; profile saved to ${ctx.profiles.file}\n`);
  }
  ctx.print({ server, ...whoami });
}

async function chooseCredentials(options: LoginOptions, ctx: CommandContext): Promise<Credentials> {
  const { env, io } = ctx.deps;
  const userGiven = options.username !== undefined || options.password !== undefined || options.passwordStdin;
  if (options.apiKey !== undefined && userGiven) {
    throw new UsageError('use either --api-key or --username/--password, not both');
  }
  if (options.password !== undefined && options.passwordStdin) {
    throw new UsageError('use either --password or --password-stdin, not both');
  }
  if (options.apiKey !== undefined) return { kind: 'apiKey', apiKey: options.apiKey };
  if (!userGiven) {
    if (env.BERTH_API_KEY) return { kind: 'apiKey', apiKey: env.BERTH_API_KEY };
    if (env.BERTH_USERNAME && env.BERTH_PASSWORD !== undefined) {
      return { kind: 'basic', username: env.BERTH_USERNAME, password: env.BERTH_PASSWORD };
    }
  }
  let username = options.username ?? env.BERTH_USERNAME;
  if (username === undefined) {
    if (!io.interactive) throw new UsageError('login needs --username and --password, or --api-key');
    username = (await io.prompt('Username: ')).trim();
  }
  let password = options.password;
  if (options.passwordStdin) password = (await io.readStdin()).replace(/\r?\n$/, '');
  if (password === undefined && options.username === undefined) password = env.BERTH_PASSWORD;
  if (password === undefined) {
    if (!io.interactive)
      throw new UsageError('login needs a password: --password, --password-stdin or BERTH_PASSWORD');
    password = await io.prompt('Password: ', { hidden: true });
  }
  if (!username) throw new UsageError('the username must not be empty');
  return { kind: 'basic', username, password };
}

function safeRead(ctx: CommandContext): Profile | undefined {
  try {
    return ctx.profiles.read();
  } catch {
    return undefined; // a broken profile is about to be replaced
  }
}
