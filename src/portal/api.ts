// The portal's only way out: same-origin calls to the management API, authenticated by the session
// cookie (HttpOnly, so scripts never see it) plus the header that the API requires with that cookie.

/** An ARM error from the management API, with the HTTP status it came with. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly target?: string,
  ) {
    super(message);
  }
}

/** A successful response: the parsed body, the ETag (if any) and the server's warnings. */
export interface ApiResult<T> {
  body: T;
  etag: string | undefined;
  warnings: string[];
}

let onSignedOut: () => void = () => undefined;

/** Called when the API says the session is gone (401), so the app can show the sign-in page. */
export function setSignedOutHandler(handler: () => void): void {
  onSignedOut = handler;
}

/** Calls the management API; throws ApiError for any non-2xx answer. */
export async function api<T = unknown>(
  method: string,
  path: string,
  options: { body?: unknown; ifMatch?: string } = {},
): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { 'X-Requested-By': 'berth-portal', Accept: 'application/json' };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  if (options.ifMatch) headers['If-Match'] = options.ifMatch;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
  } catch {
    throw new ApiError(0, 'NetworkError', 'Berth could not be reached. Check that the server is running.');
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string; target?: string } })?.error;
    if (response.status === 401 && path !== '/api/sessions') onSignedOut();
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP${response.status}`,
      error?.message ?? `The request failed with HTTP ${response.status}.`,
      error?.target,
    );
  }
  return {
    body: parsed as T,
    etag: response.headers.get('ETag') ?? undefined,
    warnings: parseWarnings(response.headers.get('Warning')),
  };
}

/** The texts of an RFC 9111 `Warning: 299 berth "…", 299 berth "…"` header. */
function parseWarnings(header: string | null): string[] {
  if (!header) return [];
  return [...header.matchAll(/299 berth "([^"]*)"/g)].map((m) => m[1] ?? '');
}

/** The URL path of a registry's sub-resource, with every segment encoded (`a/b` repositories too). */
export function registryPath(name: string, ...rest: string[]): string {
  return ['/api/registries', name, ...rest].map((s, i) => (i === 0 ? s : encodeURIComponent(s))).join('/');
}
