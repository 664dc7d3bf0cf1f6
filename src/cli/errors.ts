import { ApiError, ConnectionError } from '../api-client/index.js';

/**
 * Exit codes, relied on by scripts (documented in docs/cli.md):
 * 0 success; 1 the operation failed (API error, connection, denied); 2 usage error (bad or missing
 * flags, like argparse); 3 the named resource does not exist (404, as `az` does for missing resources).
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, notFound: 3 } as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the CLI reports as `ERROR: <message>` and exits with `exitCode`. */
export class CliError extends Error {
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode = EXIT.failure) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** A command line that cannot be run as given (exit 2). */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
  }
}

/** Maps any thrown value to the message printed after `ERROR: ` and the exit code. */
export function describeFailure(error: unknown): { message: string; exitCode: ExitCode } {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode };
  if (error instanceof ApiError) {
    const hint = error.status === 401 ? " (run 'berth login', or set BERTH_API_KEY)" : '';
    const details = error.details.map((d) => `\n  ${d.target ? `${d.target}: ` : ''}${d.message}`).join('');
    return {
      message: `${error.message}${hint}${details}`,
      exitCode: error.status === 404 ? EXIT.notFound : EXIT.failure,
    };
  }
  if (error instanceof ConnectionError) {
    return { message: `${error.message}; check --server or BERTH_SERVER`, exitCode: EXIT.failure };
  }
  return { message: error instanceof Error ? error.message : String(error), exitCode: EXIT.failure };
}
