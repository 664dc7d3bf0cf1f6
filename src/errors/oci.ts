/**
 * The OCI Distribution error codes, registered once: code, HTTP status and default message.
 * Handlers throw `OciError`; the HTTP layer turns it into `{"errors":[{code,message,detail}]}`.
 */
export const OCI_ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: {
    status: 404,
    message: 'manifest references a manifest or blob unknown to registry',
  },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  UNKNOWN: { status: 500, message: 'unknown error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type OciErrorCode = keyof typeof OCI_ERROR_CODES;

/** A failure the client caused or must hear about, carrying its OCI code. */
export class OciError extends Error {
  readonly code: OciErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers (e.g. `Range` and `Location` on a 416 for an upload). */
  readonly headers: Record<string, string>;

  constructor(
    code: OciErrorCode,
    message?: string,
    detail?: unknown,
    options: { status?: number; headers?: Record<string, string> } = {},
  ) {
    super(message ?? OCI_ERROR_CODES[code].message);
    this.name = 'OciError';
    this.code = code;
    this.status = options.status ?? OCI_ERROR_CODES[code].status;
    this.detail = detail;
    this.headers = options.headers ?? {};
  }

  /** The spec's response body for this error. */
  toBody(): { errors: { code: string; message: string; detail?: unknown }[] } {
    const entry: { code: string; message: string; detail?: unknown } = {
      code: this.code,
      message: this.message,
    };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}

/** Shorthand for `new OciError(...)` in expression position. */
export function ociError(code: OciErrorCode, message?: string, detail?: unknown): OciError {
  return new OciError(code, message, detail);
}

/** 408: the request's headers or body stopped arriving; the connection is closed after the answer. */
export function requestTimeout(message: string): OciError {
  return new OciError('BLOB_UPLOAD_INVALID', message, undefined, {
    status: 408,
    headers: { Connection: 'close' },
  });
}

/** 507: the storage under the registry is full; committed data is untouched and reads keep working. */
export function storageFull(): OciError {
  return new OciError(
    'UNKNOWN',
    'storage is full: the registry cannot store more data until space is freed; committed content is unaffected',
    { reason: 'storageFull' },
    { status: 507 },
  );
}

/** 429 with `Retry-After`: a per-registry or per-client cap (connections, upload sessions) is reached. */
export function tooManyRequests(message: string, detail: unknown, retryAfterSeconds: number): OciError {
  return new OciError('TOOMANYREQUESTS', message, detail, {
    headers: { 'Retry-After': String(retryAfterSeconds) },
  });
}

/** Whether an error means the disk (ENOSPC, EDQUOT) or the database (SQLITE_FULL) has no space left. */
export function isStorageFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
}
