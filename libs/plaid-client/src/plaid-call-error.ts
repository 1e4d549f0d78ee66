import type { PlaidError } from '@cashflow/contracts';

/**
 * Why a Plaid call did not succeed, as a value. `plaid` carries Plaid's own error object; the
 * other kinds are failures before or around Plaid, where no PlaidError exists.
 */
export type PlaidCallError =
  | { readonly kind: 'plaid'; readonly httpStatus: number; readonly error: PlaidError }
  | {
      readonly kind: 'timeout';
      readonly phase: 'connect' | 'headers' | 'body';
      readonly message: string;
    }
  | { readonly kind: 'network'; readonly code: string; readonly message: string }
  | { readonly kind: 'invalid_response'; readonly httpStatus: number; readonly message: string };

export type PlaidResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: PlaidCallError };

/** Codes for failures around Plaid, where Plaid gave no error of its own. */
export type AroundPlaidCode = 'PLAID_TIMEOUT' | 'PLAID_UNREACHABLE' | 'PLAID_INVALID_RESPONSE';

/**
 * A failed call as an event names it: Plaid's own error fields when Plaid answered with one,
 * otherwise a code of ours. Callers add their `source` (the worker, the fetcher).
 */
export type FailureFacts =
  | {
      readonly source: 'plaid';
      readonly error_type: string;
      readonly error_code: string;
      readonly error_message: string;
      readonly display_message: string | null;
      readonly plaid_request_id: string | null;
      readonly http_status: number;
    }
  | {
      readonly source: 'ours';
      readonly error_code: AroundPlaidCode;
      readonly error_message: string;
    };

export function failureFacts(error: PlaidCallError): FailureFacts {
  switch (error.kind) {
    case 'plaid':
      return {
        source: 'plaid',
        error_type: error.error.error_type,
        error_code: error.error.error_code,
        error_message: error.error.error_message,
        display_message: error.error.display_message ?? null,
        plaid_request_id: error.error.request_id ?? null,
        http_status: error.httpStatus,
      };
    case 'timeout':
      return { source: 'ours', error_code: 'PLAID_TIMEOUT', error_message: error.message };
    case 'network':
      return {
        source: 'ours',
        error_code: 'PLAID_UNREACHABLE',
        error_message: `${error.code}: ${error.message}`,
      };
    case 'invalid_response':
      return {
        source: 'ours',
        error_code: 'PLAID_INVALID_RESPONSE',
        error_message: `HTTP ${error.httpStatus}: ${error.message}`,
      };
  }
}
