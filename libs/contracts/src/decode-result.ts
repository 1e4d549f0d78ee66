import type { z } from 'zod';

/** Why a record could not be used; each is the dlq_error_code of its dead letter. */
export const DECODE_ERROR_CODES = [
  'MISSING_HEADER',
  'INVALID_HEADER',
  'UNKNOWN_EVENT_TYPE',
  'UNEXPECTED_EVENT_TYPE',
  'MISSING_VALUE',
  'TOO_LARGE',
  'INVALID_JSON',
  'SCHEMA_VIOLATION',
  'SUBJECT_MISMATCH',
  'KEY_MISMATCH',
  /** Decoded, but its handler kept failing until the consumer gave it up (see dlq_reason). */
  'HANDLER_FAILED',
  /** A request whose ce_id another source or Item used first (ids are unique per source only). */
  'REQUEST_ID_CONFLICT',
] as const;

export type DecodeErrorCode = (typeof DECODE_ERROR_CODES)[number];

export interface FieldIssue {
  /** Dotted path, e.g. `data.days_requested` or `ce_time`. */
  readonly field: string;
  readonly message: string;
}

/** Why a message could not be decoded; carried into dead-letter headers as is. */
export interface DecodeError {
  readonly code: DecodeErrorCode;
  /** The first offending field. */
  readonly field: string;
  /** One line a person can act on, starting with the field. */
  readonly message: string;
  readonly issues: readonly FieldIssue[];
}

export type DecodeResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: DecodeError };

export function decodeFailure(
  code: DecodeErrorCode,
  field: string,
  message: string,
  issues: readonly FieldIssue[] = [{ field, message }],
): { readonly ok: false; readonly error: DecodeError } {
  return { ok: false, error: { code, field, message, issues } };
}

/** Turns zod issues into field-named issues; the first one names the error. */
export function fromZodIssues(
  zodIssues: readonly z.core.$ZodIssue[],
  prefix?: string,
): { field: string; message: string; issues: FieldIssue[] } {
  const issues = zodIssues.map((issue) => {
    const path = issue.path.map(String).join('.');
    const field = [prefix, path].filter(Boolean).join('.') || prefix || '(root)';
    return { field, message: `${field}: ${issue.message}` };
  });
  const first = issues[0] ?? { field: prefix ?? '(root)', message: 'invalid' };
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return { field: first.field, message: first.message + more, issues };
}
