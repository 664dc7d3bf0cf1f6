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
  AuthenticationFailed: 401,
  AuthorizationFailed: 403,
  NetworkAccessDenied: 403,
  ResourceNotFound: 404,
  RegistryNameInUse: 409,
  Conflict: 409,
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

  constructor(
    code: ManagementErrorCode,
    message: string,
    options: { target?: string; details?: ErrorDetail[] } = {},
  ) {
    super(message);
    this.name = 'ManagementError';
    this.code = code;
    this.status = MANAGEMENT_ERROR_CODES[code];
    this.target = options.target;
    this.details = options.details;
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
