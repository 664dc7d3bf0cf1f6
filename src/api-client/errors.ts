/** The API answered with an error (`{ error: { code, message, target?, details? } }`). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly target: string | undefined;
  readonly details: { code: string; message: string; target?: string }[];

  constructor(
    status: number,
    code: string,
    message: string,
    extra: { target?: string; details?: { code: string; message: string; target?: string }[] } = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.target = extra.target;
    this.details = extra.details ?? [];
  }
}

/** The server could not be reached at all (refused, unknown host, timeout, TLS failure). */
export class ConnectionError extends Error {
  readonly url: string;
  readonly causeCode: string | undefined;

  constructor(url: string, message: string, causeCode?: string) {
    super(message);
    this.name = 'ConnectionError';
    this.url = url;
    this.causeCode = causeCode;
  }
}

/** Turns a failed `fetch` into a `ConnectionError` whose message says what went wrong, in words. */
export function connectionErrorFrom(url: string, error: unknown): ConnectionError {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const code = cause?.code ?? (error as { code?: string } | undefined)?.code;
  const origin = safeOrigin(url);
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused (is the server running?)'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'host not found'
        : code === 'ECONNRESET'
          ? 'connection reset by the server'
          : (error as Error | undefined)?.name === 'TimeoutError'
            ? 'timed out'
            : (cause?.message ?? (error as Error | undefined)?.message ?? 'unknown network error');
  return new ConnectionError(url, `cannot connect to ${origin}: ${why}`, code);
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
