import { ManagementClient, probeDataEndpoint, type ProbeOptions } from '../api-client/index.js';
import { configDir, ProfileStore, resolveConnection } from './config.js';
import { CliError, UsageError } from './errors.js';
import { formatOutput, type OutputFormat, type TableSpec } from './output.js';

/** The process boundary, injected so tests can run commands in-process. */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stdin is a terminal a question can be asked on. */
  interactive: boolean;
  /** Asks on the terminal; `hidden` does not echo (passwords). */
  prompt(question: string, options?: { hidden?: boolean }): Promise<string>;
  /** All of stdin (for `--password-stdin`). */
  readStdin(): Promise<string>;
}

/** Everything a command may touch besides its flags. */
export interface CliDeps {
  io: CliIO;
  env: Record<string, string | undefined>;
  homeDir: string;
  fetch?: typeof fetch;
  probe?: typeof probeDataEndpoint;
  version?: string;
}

/** The options every command accepts. */
export interface GlobalOptions {
  output: OutputFormat;
  query?: string;
  server?: string;
  onlyShowErrors?: boolean;
}

/** Per-invocation helpers handed to each command's action. */
export class CommandContext {
  readonly deps: CliDeps;
  readonly options: GlobalOptions;
  readonly profiles: ProfileStore;
  private cachedClient: ManagementClient | undefined;

  constructor(deps: CliDeps, options: GlobalOptions) {
    this.deps = deps;
    this.options = options;
    this.profiles = new ProfileStore(configDir(deps.env, deps.homeDir));
  }

  /** The management API client for the resolved server and credentials. */
  client(): ManagementClient {
    if (!this.cachedClient) {
      const connection = resolveConnection(this.options, this.deps.env, this.profiles.read());
      this.cachedClient = this.makeClient(connection.server, connection.credentials);
    }
    return this.cachedClient;
  }

  /** A client for explicit server and credentials (used by `login` before anything is stored). */
  makeClient(server: string, credentials: ConstructorParameters<typeof ManagementClient>[0]['credentials']) {
    return new ManagementClient({
      server,
      credentials,
      ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}),
      userAgent: `berth-cli/${this.deps.version ?? 'dev'}`,
      onWarning: (message) => this.warn(message),
    });
  }

  /** Probes a data endpoint (injectable for tests). */
  probe(url: string, options?: ProbeOptions) {
    return (this.deps.probe ?? probeDataEndpoint)(url, options);
  }

  /** Writes a command's result in the chosen `--output` format, after `--query`. */
  print(data: unknown, table?: TableSpec): void {
    const text = formatOutput(data, {
      format: this.options.output,
      ...(this.options.query !== undefined ? { query: this.options.query } : {}),
      ...(table ? { table } : {}),
      color: !this.deps.env.NO_COLOR,
    });
    if (text) this.deps.io.stdout(text);
  }

  /** `WARNING: ...` on stderr, unless `--only-show-errors`. */
  warn(message: string): void {
    if (!this.options.onlyShowErrors) this.deps.io.stderr(`WARNING: ${message}\n`);
  }

  /**
   * Asks before something destructive. `--yes` skips the question; without a terminal and without
   * `--yes` it is a usage error, so an unattended script fails loudly instead of hanging.
   */
  async confirm(question: string, yes: boolean | undefined): Promise<void> {
    if (yes) return;
    if (!this.deps.io.interactive) {
      throw new UsageError(`no terminal to ask for confirmation on; pass --yes to confirm. (${question})`);
    }
    const answer = (await this.deps.io.prompt(`${question} (y/n): `)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') throw new CliError('operation cancelled');
  }
}
