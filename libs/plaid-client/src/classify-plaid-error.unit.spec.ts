import type { PlaidCallError } from './plaid-call-error';
import { backoffDelay, backoffFor, classifyPlaidError } from './classify-plaid-error';

const plaid = (error_type: string, error_code: string, httpStatus = 400): PlaidCallError => ({
  kind: 'plaid',
  httpStatus,
  error: { error_type, error_code, error_message: 'm' },
});

describe('classifyPlaidError', () => {
  it.each([
    ['RATE_LIMIT_EXCEEDED', 'RATE_LIMIT', 'soon'],
    ['RATE_LIMIT_EXCEEDED', 'INSTITUTION_RATE_LIMIT', 'soon'],
    ['API_ERROR', 'INTERNAL_SERVER_ERROR', 'soon'],
    ['API_ERROR', 'PLANNED_MAINTENANCE', 'later'],
    ['INSTITUTION_ERROR', 'INSTITUTION_DOWN', 'later'],
    ['INSTITUTION_ERROR', 'INSTITUTION_NOT_RESPONDING', 'later'],
    ['INSTITUTION_ERROR', 'INSTITUTION_NOT_AVAILABLE', 'later'],
    ['INSTITUTION_ERROR', 'INSTITUTION_NO_LONGER_SUPPORTED', 'never'],
    ['INSTITUTION_ERROR', 'UNSUPPORTED_RESPONSE', 'never'],
    ['ITEM_ERROR', 'PRODUCT_NOT_READY', 'later'],
    ['ITEM_ERROR', 'PRODUCTS_NOT_SUPPORTED', 'never'],
    ['ITEM_ERROR', 'ITEM_LOGIN_REQUIRED', 'never'],
    ['INVALID_INPUT', 'INVALID_ACCESS_TOKEN', 'never'],
    ['INVALID_REQUEST', 'INVALID_FIELD', 'never'],
    ['SOMETHING_NEW', 'WHATEVER', 'never'],
  ])('%s/%s -> %s', (type, code, retry) => {
    expect(classifyPlaidError(plaid(type, code)).retry).toBe(retry);
  });

  it('decides on error_type, not the HTTP status: INSTITUTION_DOWN comes with a 400', () => {
    expect(classifyPlaidError(plaid('INSTITUTION_ERROR', 'INSTITUTION_DOWN', 400)).retryable).toBe(
      true,
    );
    expect(classifyPlaidError(plaid('INVALID_REQUEST', 'INVALID_FIELD', 500)).retryable).toBe(
      false,
    );
  });

  it('marks errors only the user can fix', () => {
    expect(classifyPlaidError(plaid('ITEM_ERROR', 'ITEM_LOGIN_REQUIRED')).needsUserAction).toBe(
      true,
    );
    expect(classifyPlaidError(plaid('ITEM_ERROR', 'PRODUCTS_NOT_SUPPORTED')).needsUserAction).toBe(
      false,
    );
  });

  it('retries time-outs, connection errors and non-Plaid answers soon', () => {
    expect(classifyPlaidError({ kind: 'timeout', phase: 'headers', message: 'm' }).retry).toBe(
      'soon',
    );
    expect(classifyPlaidError({ kind: 'network', code: 'ECONNRESET', message: 'm' }).retry).toBe(
      'soon',
    );
    expect(
      classifyPlaidError({ kind: 'invalid_response', httpStatus: 502, message: 'm' }).retry,
    ).toBe('soon');
  });
});

describe('backoff with full jitter', () => {
  const soon = { baseMs: 1000, maxMs: 15 * 60_000 };

  it('draws from [0, base * 2^(attempt-1)], capped', () => {
    expect(backoffDelay(soon, 1, () => 0.999999)).toBe(999);
    expect(backoffDelay(soon, 4, () => 0.5)).toBe(4000);
    expect(backoffDelay(soon, 30, () => 0.999999)).toBe(15 * 60_000 - 1);
    expect(backoffDelay(soon, 3, () => 0)).toBe(0);
  });

  it('waits far longer for an institution or Plaid to come back', () => {
    expect(backoffFor('later', soon)).toEqual({ baseMs: 60_000, maxMs: 4 * 3600_000 });
    expect(backoffFor('soon', soon)).toBe(soon);
  });
});
