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
