import { z } from 'zod';
import { Attempts, EventId, ItemId, Timestamp } from './common';
import { RefusedFor } from './item-health';

/** A failure Plaid reported, as Plaid named it. */
export const PlaidCallFailure = z.object({
  source: z.literal('plaid'),
  error_type: z.string().min(1),
  error_code: z.string().min(1),
  error_message: z.string(),
  display_message: z.string().nullable(),
  plaid_request_id: z.string().nullable(),
  http_status: z.number().int(),
});

/**
 * A failure before or around Plaid: the request was invalid, the Item unknown, or Plaid did not
 * answer. Known codes: INVALID_DAYS_REQUESTED, UNKNOWN_ITEM, TOKEN_UNREADABLE,
 * PLAID_TIMEOUT, PLAID_UNREACHABLE, PLAID_INVALID_RESPONSE; and, for a request refused because
 * the Item needs its user (see `item_health`), the Item's own error: ITEM_LOGIN_REQUIRED and the
 * like, USER_PERMISSION_REVOKED, USER_ACCOUNT_REVOKED.
 */
export const WorkerFailure = z.object({
  source: z.literal('worker'),
  error_code: z.string().min(1),
  error_message: z.string(),
});

export const RefreshFailure = z.discriminatedUnion('source', [PlaidCallFailure, WorkerFailure]);
export type RefreshFailure = z.infer<typeof RefreshFailure>;

export const RefreshFailedData = z
  .object({
    item_id: ItemId,
    refresh_request_id: EventId.describe('Event id of the RefreshRequested this answers.'),
    days_requested: z
      .number()
      .nullable()
      .describe(
        'days_requested as asked for (after the default), null when it was absent and invalid.',
      ),
    error: RefreshFailure,
    retryable: z
      .boolean()
      .describe('Whether asking again later may succeed without anyone changing anything.'),
    attempts: Attempts,
    failed_at: Timestamp,
    coalesced_into: EventId.optional().describe(
      'Present when this request shared the Plaid call made for another RefreshRequested: that request’s event id.',
    ),
    item_health: RefusedFor.optional().describe(
      'Present when the request was refused without a Plaid call because the Item needs its user (needs_user_action or revoked; attempts is 0): its health then, with the sequence of the change that gave it. Refreshes go to Plaid again after LOGIN_REPAIRED, a new access token, or a request with force: true.',
    ),
  })
  .meta({ title: 'RefreshFailed v1 data' })
  .describe('The refresh was not accepted; error says why, as Plaid or the worker named it.');
export type RefreshFailedData = z.infer<typeof RefreshFailedData>;
