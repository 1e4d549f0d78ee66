import { randomBytes } from 'node:crypto';

/**
 * The Plaid errors the sandbox can answer with: type, HTTP status and messages as Plaid documents
 * them (see Plaid's error reference). The one table every sandbox answer takes its errors from.
 */
const CATALOG = {
  INVALID_API_KEYS: {
    type: 'INVALID_INPUT',
    status: 400,
    message: 'invalid client_id or secret provided',
  },
  INVALID_ACCESS_TOKEN: {
    type: 'INVALID_INPUT',
    status: 400,
    message: 'provided access token is in an invalid format or does not exist',
  },
  MISSING_FIELDS: { type: 'INVALID_REQUEST', status: 400, message: 'missing required fields' },
  UNKNOWN_FIELDS: { type: 'INVALID_REQUEST', status: 400, message: 'unknown fields' },
  INVALID_FIELD: { type: 'INVALID_REQUEST', status: 400, message: 'invalid field' },
  INVALID_BODY: {
    type: 'INVALID_REQUEST',
    status: 400,
    message: 'body could not be parsed as JSON',
  },
  INVALID_HEADERS: {
    type: 'INVALID_REQUEST',
    status: 400,
    message: 'Content-Type must be application/json',
  },
  NOT_FOUND: { type: 'INVALID_REQUEST', status: 404, message: 'not found' },
  PRODUCTS_NOT_SUPPORTED: {
    type: 'ITEM_ERROR',
    status: 400,
    message: 'the requested product is not supported by this item',
  },
  PRODUCT_NOT_ENABLED: {
    type: 'ITEM_ERROR',
    status: 400,
    message: 'the requested product is not enabled for this item',
  },
  PRODUCT_NOT_READY: {
    type: 'ITEM_ERROR',
    status: 400,
    message:
      'the requested product is not yet ready. please provide a webhook or try the request again later',
  },
  ITEM_LOGIN_REQUIRED: {
    type: 'ITEM_ERROR',
    status: 400,
    message:
      'the login details of this item have changed (credentials, MFA, or required user action) and a user login is required to update this information.',
    display:
      "The login details of this account have changed. Please log in to your bank's website.",
  },
  INSTITUTION_DOWN: {
    type: 'INSTITUTION_ERROR',
    status: 400,
    message: 'this institution is not currently responding to this request. please try again soon',
    display: 'This financial institution is not currently responding. Please try again later.',
  },
  INSTITUTION_NOT_RESPONDING: {
    type: 'INSTITUTION_ERROR',
    status: 400,
    message: 'this institution is not currently responding to this request. please try again soon',
    display: 'This financial institution is not currently responding. Please try again later.',
  },
  RATE_LIMIT: {
    type: 'RATE_LIMIT_EXCEEDED',
    status: 429,
    message: 'rate limit exceeded for attempts to access this item. please try again later',
  },
  INTERNAL_SERVER_ERROR: {
    type: 'API_ERROR',
    status: 500,
    message: 'an unexpected error occurred',
    display: 'There was a problem processing your request. Please try again later.',
  },
  PLANNED_MAINTENANCE: {
    type: 'API_ERROR',
    status: 503,
    message:
      'the Plaid API is temporarily unavailable due to planned maintenance. visit https://status.plaid.com/ for more information',
  },
} as const satisfies Record<
  string,
  { type: string; status: number; message: string; display?: string }
>;

export type PlaidErrorCode = keyof typeof CATALOG;
export const PLAID_ERROR_CODES = Object.keys(CATALOG) as PlaidErrorCode[];

/** Plaid's PlaidError object, every field present as Plaid sends it. */
export interface PlaidErrorBody {
  error_type: string;
  error_code: string;
  error_code_reason: string | null;
  error_message: string;
  display_message: string | null;
  request_id: string;
  causes: unknown[];
  status: number;
  documentation_url: string;
  suggested_action: string | null;
}

/** Plaid request ids are short alphanumeric strings. */
export function newRequestId(): string {
  return randomBytes(12).toString('base64url').replace(/[-_]/g, 'x').slice(0, 15);
}

export function plaidErrorBody(
  code: PlaidErrorCode,
  requestId: string,
  message?: string,
): PlaidErrorBody {
  const entry: { type: string; status: number; message: string; display?: string } = CATALOG[code];
  return {
    error_type: entry.type,
    error_code: code,
    error_code_reason: null,
    error_message: message ?? entry.message,
    display_message: entry.display ?? null,
    request_id: requestId,
    causes: [],
    status: entry.status,
    documentation_url: `https://plaid.com/docs/errors/${entry.type.toLowerCase().replace(/_/g, '-')}/#${code.toLowerCase()}`,
    suggested_action: null,
  };
}

/** Thrown by handlers; the filter turns it into Plaid's HTTP status and error body. */
export class PlaidHttpError extends Error {
  readonly body: PlaidErrorBody;

  constructor(code: PlaidErrorCode, requestId: string, message?: string) {
    const body = plaidErrorBody(code, requestId, message);
    super(body.error_message);
    this.body = body;
  }

  get status(): number {
    return this.body.status;
  }
}
