import type { PlaidCallError } from './plaid-call-error';

/**
 * How to treat a failed Plaid call: `never` fails the request at once; `soon` retries with a
 * short backoff (rate limits, Plaid's own errors, the network); `later` retries on a slow
 * schedule (an institution or Plaid is down for a while). Decided on error_type / error_code,
 * never on the HTTP status, as Plaid advises.
 */
export type RetryClass = 'never' | 'soon' | 'later';

export interface Classification {
  readonly retry: RetryClass;
  /** Whether asking again later may succeed without anyone changing anything. */
  readonly retryable: boolean;
  /** The user must act (re-link the Item in Link's update mode). */
  readonly needsUserAction: boolean;
}

const NEVER: Classification = { retry: 'never', retryable: false, needsUserAction: false };
const USER: Classification = { retry: 'never', retryable: false, needsUserAction: true };
const SOON: Classification = { retry: 'soon', retryable: true, needsUserAction: false };
const LATER: Classification = { retry: 'later', retryable: true, needsUserAction: false };

/** The one table: error_type -> default, with the error_codes that differ from it. */
const TABLE: Record<
  string,
  { readonly default: Classification; readonly codes?: Record<string, Classification> }
> = {
  RATE_LIMIT_EXCEEDED: { default: SOON },
  API_ERROR: { default: SOON, codes: { PLANNED_MAINTENANCE: LATER } },
  INSTITUTION_ERROR: {
    default: LATER,
    codes: { INSTITUTION_NO_LONGER_SUPPORTED: NEVER, UNSUPPORTED_RESPONSE: NEVER },
  },
  ITEM_ERROR: {
    default: NEVER,
    codes: {
      ITEM_LOGIN_REQUIRED: USER,
      ACCESS_NOT_GRANTED: USER,
      PRODUCT_NOT_READY: LATER,
    },
  },
  INVALID_INPUT: {
    default: NEVER,
    codes: { USER_PERMISSION_REVOKED: USER, ADDITIONAL_CONSENT_REQUIRED: USER },
  },
  INVALID_REQUEST: { default: NEVER },
  INVALID_RESULT: { default: NEVER },
};

export function classifyPlaidError(error: PlaidCallError): Classification {
  switch (error.kind) {
    case 'timeout':
    case 'network':
    case 'invalid_response':
      // No answer, or one that is not Plaid's (a proxy's 502): the call may not have happened.
      return SOON;
    case 'plaid': {
      const entry = TABLE[error.error.error_type];
      // An error type Plaid adds later fails the request rather than retrying blindly.
      if (!entry) return NEVER;
      return entry.codes?.[error.error.error_code] ?? entry.default;
    }
  }
}

export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** `later` waits on a schedule 60x slower, capped 16x higher (defaults: 1 min up to 4 h). */
export function backoffFor(
  retry: Exclude<RetryClass, 'never'>,
  soon: BackoffPolicy,
): BackoffPolicy {
  return retry === 'soon' ? soon : { baseMs: soon.baseMs * 60, maxMs: soon.maxMs * 16 };
}

/**
 * Exponential backoff with full jitter: a uniform draw from [0, min(max, base * 2^(attempt-1))].
 * `attempt` is the number of calls made so far (1 after the first failure).
 */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}
