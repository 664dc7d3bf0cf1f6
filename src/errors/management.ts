/**
 * Management-plane error codes, registered once, with their HTTP status. Bodies follow ARM:
 * `{ "error": { code, message, target?, details? } }`.
 */
export const MANAGEMENT_ERROR_CODES = {
  InvalidRequestContent: 400,
  InvalidRegistryName: 400,
  InvalidNetworkRule: 400,
  TooManyIpRules: 400,
  SkuNotSupported: 400,
  AdminUserDisabled: 400,
  InvalidParameter: 400,
  InvalidScopeMapAction: 400,
  TokenLimitExceeded: 400,
  AuthenticationFailed: 401,
  AuthorizationFailed: 403,
  NetworkAccessDenied: 403,
  ResourceNotFound: 404,
  RegistryNameInUse: 409,
  Conflict: 409,
  TooManyRequests: 429,
  PreconditionFailed: 412,
  RequestEntityTooLarge: 413,
  InternalServerError: 500,
} as const satisfies Record<string, number>;

export type ManagementErrorCode = keyof typeof MANAGEMENT_ERROR_CODES;

export interface ErrorDetail {
  code: string;
  message: string;
  target?: string;
}

/** A management-plane failure that callers must hear about. */
export class ManagementError extends Error {
  readonly code: ManagementErrorCode;
  readonly status: number;
  readonly target: string | undefined;
  readonly details: ErrorDetail[] | undefined;
  /** Seconds the client should wait (429 responses carry it as `Retry-After`). */
  readonly retryAfter: number | undefined;

  constructor(
    code: ManagementErrorCode,
    message: string,
    options: { target?: string; details?: ErrorDetail[]; retryAfter?: number } = {},
  ) {
    super(message);
    this.name = 'ManagementError';
    this.code = code;
    this.status = MANAGEMENT_ERROR_CODES[code];
    this.target = options.target;
    this.details = options.details;
    this.retryAfter = options.retryAfter;
  }

  /** The ARM-shaped response body. */
  toBody(): { error: { code: string; message: string; target?: string; details?: ErrorDetail[] } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.target !== undefined ? { target: this.target } : {}),
        ...(this.details !== undefined ? { details: this.details } : {}),
      },
    };
  }
}
