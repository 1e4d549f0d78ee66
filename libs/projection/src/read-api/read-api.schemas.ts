/**
 * The projection read API's parameters and answers, as zod schemas: requests are validated with
 * them and the OpenAPI document (openapi.ts) is generated from them.
 */
import { z } from 'zod';
import { ITEM_STATUSES } from '../rules/refresh-projection';

const Time = z.iso.datetime({ offset: true }).nullable();

export const ErrorSummary = z.object({
  source: z.enum(['plaid', 'worker', 'webhook']).describe('Who named the error.'),
  type: z.string().nullable().describe("Plaid's error_type, null for the worker's own errors."),
  code: z.string().describe("Plaid's error_code, or the worker's (e.g. PLAID_TIMEOUT)."),
  message: z.string(),
  at: z.iso.datetime({ offset: true }),
});

export const HEALTH_STATUSES = [
  'healthy',
  'consent_expiring',
  'needs_user_action',
  'revoked',
] as const;

export const ItemHealthView = z
  .object({
    status: z
      .enum(HEALTH_STATUSES)
      .describe(
        'healthy; consent_expiring (access ends at consent_expires_at; refreshes still go to Plaid); needs_user_action (reason: the Plaid error, e.g. ITEM_LOGIN_REQUIRED) or revoked (reason: the webhook code): the user must act, and refreshes are refused without a Plaid call unless forced.',
      ),
    reason: z.string().nullable(),
    consent_expires_at: Time,
    changed_at: Time.describe(
      'When the fact behind the latest change happened; null: never changed.',
    ),
  })
  .describe(
    "The Item's health, as the refresh worker's ItemNeedsAttention / ItemHealthRestored tell it.",
  );

export const ItemRefreshState = z.object({
  item_id: z.string(),
  status: z
    .enum(ITEM_STATUSES)
    .nullable()
    .describe(
      'requested (no answer yet), refreshing (Plaid accepted, no webhook yet), ready, failed, overdue (accepted, but no webhook came and polling Plaid until REPORT_GIVE_UP_AFTER_MS found no new data); null for an Item known only from its health (no refresh or report yet).',
    ),
  health: ItemHealthView,
  stuck: z
    .boolean()
    .describe('Refreshing for longer than PROJECTOR_STUCK_AFTER_MINUTES with no webhook.'),
  latest_request_id: z.string().nullable(),
  days_requested: z.number().int().nullable(),
  requested_at: Time,
  accepted_at: Time,
  ready_at: Time,
  failed_at: Time,
  plaid_request_id: z.string().nullable(),
  attempts: z.number().int().nullable(),
  refreshes: z.number().int().describe('Refreshes whose data became ready.'),
  last_error: ErrorSummary.nullable().describe(
    'The newest failure of the Item, even when a later refresh succeeded.',
  ),
  fetched_at: Time.describe(
    'When the report fetcher last stored its report (GET /items/{item_id}/report); null: never.',
  ),
  last_successful_update_time: Time.describe(
    "Plaid's last_successful_update_time as of that fetch: how fresh the stored data is.",
  ),
  transaction_count: z
    .number()
    .int()
    .nullable()
    .describe('Transactions Plaid returned for that fetch’s window.'),
  last_fetch_failure: z
    .object({
      code: z.string().describe("Plaid's error_code, or the fetcher's (e.g. DATA_KEPT_CHANGING)."),
      message: z.string(),
      at: z.iso.datetime({ offset: true }),
    })
    .nullable()
    .describe(
      'The newest failed fetch, even when a later fetch succeeded (compare at with fetched_at).',
    ),
  updated_at: z.iso.datetime({ offset: true }),
});

export const Refresh = z.object({
  request_id: z.string().describe('Event id of the RefreshRequested.'),
  status: z.enum(['requested', 'accepted', 'failed', 'ready', 'report_failed', 'overdue']),
  days_requested: z.number().int().nullable(),
  requested_by: z.string().nullable(),
  requested_at: Time,
  accepted_at: Time,
  ready_at: Time,
  failed_at: Time,
  plaid_request_id: z.string().nullable(),
  attempts: z.number().int().nullable(),
  coalesced_into: z.string().nullable(),
  retryable: z.boolean().nullable(),
  error: ErrorSummary.nullable(),
  fetched_at: Time.describe('When a fetch first stored the data this request brought.'),
  overdue_at: Time.describe(
    'When the report fetcher gave up waiting for its report (ReportOverdue); the status stays ready if a report came later after all.',
  ),
  seconds_to_accept: z.number().nullable(),
  seconds_to_ready: z.number().nullable(),
  seconds_to_fetched: z.number().nullable().describe('From requested_at to fetched_at.'),
});

/** A page's size, as every list endpoint takes it. */
export const PageLimit = z.coerce.number().int().min(1).max(500).default(50);
/** Where a page starts: an opaque key the previous page handed out. */
export const PageCursor = z
  .string()
  .min(1)
  .max(1000)
  .optional()
  .describe('next_cursor of the previous page.');

export const ItemListQuery = z.object({
  status: z.enum(ITEM_STATUSES).optional(),
  error_code: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe('Items whose last error has this code.'),
  stuck: z
    .enum(['true', 'false'])
    .optional()
    .describe('true: only Items refreshing longer than PROJECTOR_STUCK_AFTER_MINUTES.'),
  health: z.enum(HEALTH_STATUSES).optional().describe('Only Items with this health.'),
  needs_attention: z
    .enum(['true', 'false'])
    .optional()
    .describe('true: only Items whose health is not healthy; false: only healthy ones.'),
  limit: PageLimit,
  cursor: PageCursor,
});

export const PageQuery = z.object({ limit: PageLimit, cursor: PageCursor });

export const ItemPage = z.object({
  items: z.array(ItemRefreshState),
  next_cursor: z.string().nullable().describe('Pass as cursor for the next page; null at the end.'),
});

export const RefreshPage = z.object({
  refreshes: z.array(Refresh).describe('Newest first.'),
  next_cursor: z.string().nullable(),
});

export const ApiError = z.object({
  error: z.object({
    code: z.enum(['NOT_FOUND', 'INVALID_PARAMETER', 'UNAUTHENTICATED']),
    message: z.string(),
  }),
});
