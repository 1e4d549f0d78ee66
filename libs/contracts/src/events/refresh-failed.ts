import { z } from 'zod';
import { Attempts, EventId, ItemId, Timestamp } from './common';

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
 * PLAID_TIMEOUT, PLAID_UNREACHABLE, PLAID_INVALID_RESPONSE.
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
  })
  .meta({ title: 'RefreshFailed v1 data' })
  .describe('The refresh was not accepted; error says why, as Plaid or the worker named it.');
export type RefreshFailedData = z.infer<typeof RefreshFailedData>;
