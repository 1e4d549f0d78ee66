import { z } from 'zod';
import { PlaidHttpError } from './plaid-errors';

/**
 * Request bodies of the endpoints the sandbox serves, as Plaid's spec defines them. Objects are
 * strict: Plaid rejects fields an endpoint does not know (UNKNOWN_FIELDS).
 */
const credentials = { client_id: z.string().optional(), secret: z.string().optional() };
const accessToken = z.string().min(1);
const daysRequested = z.number().int().min(1).max(730);
const count = z.number().int().min(1).max(500).default(100);
const options = z.strictObject({ account_ids: z.array(z.string()).optional() }).optional();

export const RefreshRequest = z.strictObject({
  ...credentials,
  access_token: accessToken,
  days_requested: daysRequested.default(365),
});

export const GetRequest = z.strictObject({
  ...credentials,
  access_token: accessToken,
  days_requested: daysRequested,
  count,
  cursor: z.string().default(''),
  options,
});

export const TransactionsGetRequest = z.strictObject({
  ...credentials,
  access_token: accessToken,
  count,
  cursor: z.string().default(''),
  options,
});

export const InsightsGetRequest = z.strictObject({ ...credentials, access_token: accessToken });

export const WebhookVerificationKeyGetRequest = z.strictObject({
  ...credentials,
  key_id: z.string().min(1),
});

/** Validates a request body, answering the first problem as Plaid would. */
export function parseRequest<T>(schema: z.ZodType<T>, body: unknown, requestId: string): T {
  const result = schema.safeParse(body, { reportInput: true });
  if (result.success) return result.data;
  const issues = result.error.issues;
  const unknown = issues.flatMap((i) =>
    i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k].join('.')) : [],
  );
  if (unknown.length > 0) {
    throw new PlaidHttpError(
      'UNKNOWN_FIELDS',
      requestId,
      `the following fields are not recognized by this endpoint: ${unknown.join(', ')}`,
    );
  }
  const missing = issues
    .filter((i) => i.code === 'invalid_type' && i.input === undefined)
    .map((i) => i.path.join('.'));
  if (missing.length > 0) {
    throw new PlaidHttpError(
      'MISSING_FIELDS',
      requestId,
      `the following required fields are missing: ${missing.join(', ')}`,
    );
  }
  const first = issues[0]!;
  const field = first.path.join('.') || 'body';
  throw new PlaidHttpError('INVALID_FIELD', requestId, `${field}: ${describe(first)}`);
}

function describe(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_small':
      return `must be at least ${String(issue.minimum)}`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)}`;
    case 'invalid_type':
      return issue.expected === 'int' ? 'must be an integer' : `must be of type ${issue.expected}`;
    default:
      return issue.message;
  }
}
