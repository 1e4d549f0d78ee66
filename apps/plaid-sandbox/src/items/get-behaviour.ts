import { z } from 'zod';
import { PLAID_ERROR_CODES, type PlaidErrorCode } from '../plaid-api/plaid-errors';

/**
 * How an Item answers /cashflow_report/get, set when the Item is created or later with
 * PUT /sandbox/items/{id}/get_behaviour (which replaces all of it). Counts are what is left: each
 * call or paging loop they apply to uses one up.
 */
export const GetBehaviour = z.strictObject({
  mutate_during_pagination: z
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(0)
    .describe(
      'The next N paging loops (a /get call with cursor "") see the Item move to its next generation, and last_successful_update_time move, right after their first page.',
    ),
  errors: z
    .strictObject({
      error_code: z.enum(PLAID_ERROR_CODES as [PlaidErrorCode, ...PlaidErrorCode[]]),
      count: z.number().int().min(1).max(1_000_000),
    })
    .nullable()
    .default(null)
    .describe('The next `count` /get calls answer this Plaid error, with its type and status.'),
  latency_ms: z
    .number()
    .min(0)
    .max(600_000)
    .default(0)
    .describe('/get and /insights/get answer after this many ms (times PLAID_SANDBOX_TIME_SCALE).'),
});
export type GetBehaviour = z.output<typeof GetBehaviour>;

export const DEFAULT_GET_BEHAVIOUR: GetBehaviour = {
  mutate_during_pagination: 0,
  errors: null,
  latency_ms: 0,
};

export type GetDecision =
  | { readonly kind: 'fail'; readonly code: PlaidErrorCode }
  /** Serve the page; `advanceAfter`: then move the Item to its next generation. */
  | { readonly kind: 'serve'; readonly advanceAfter: boolean };

/**
 * The answer to a /get call that reached the Item (valid request, within rate limits), and the
 * behaviour left for the calls after it. Scripted errors come first: a failed call is no page.
 */
export function decideGet(
  behaviour: GetBehaviour,
  firstPage: boolean,
): { readonly decision: GetDecision; readonly next: GetBehaviour } {
  const { errors } = behaviour;
  if (errors) {
    return {
      decision: { kind: 'fail', code: errors.error_code },
      next: {
        ...behaviour,
        errors: errors.count > 1 ? { ...errors, count: errors.count - 1 } : null,
      },
    };
  }
  if (firstPage && behaviour.mutate_during_pagination > 0) {
    return {
      decision: { kind: 'serve', advanceAfter: true },
      next: { ...behaviour, mutate_during_pagination: behaviour.mutate_during_pagination - 1 },
    };
  }
  return { decision: { kind: 'serve', advanceAfter: false }, next: behaviour };
}
