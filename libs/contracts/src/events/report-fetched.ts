import { z } from 'zod';
import { DaysRequested, EventId, ItemId, Timestamp } from './common';
import { PlaidCallFailure } from './refresh-failed';

export const FetchId = z.uuid().describe('Identifies one fetch of an Item’s report.');

const IsoDate = z.iso.date().describe('A calendar date, YYYY-MM-DD.');
const Count = z.number().int().min(0);

/** What a fetch follows: the report and the requests whose data it brings. */
const FetchFollows = {
  item_id: ItemId,
  fetch_id: FetchId,
  report_event_id: EventId.describe('Event id of the ReportReady this fetch follows.'),
  report_received_at: Timestamp.describe('received_at of that ReportReady.'),
  days_requested: DaysRequested.describe(
    'The window fetched: the largest days_requested among the requests the report answers (365 when none is known).',
  ),
  refresh_request_ids: z
    .array(EventId)
    .describe(
      'Event ids of the RefreshRequested whose data this fetch brings (their acceptances are answered by the report); empty when the report answers none this system knows.',
    ),
};

/** The latest month of the Item's insights, as Plaid summarised it. */
export const InsightsSummary = z
  .object({
    months: Count.describe('Monthly summaries Plaid gave.'),
    historical_balance_days: Count.describe('Days of end-of-day balances Plaid gave.'),
    latest_month: z
      .object({
        start_date: IsoDate,
        end_date: IsoDate,
        total_revenue: z.number().nullable(),
        ending_balance: z.number().nullable(),
        average_daily_net_cashflow: z.number().nullable(),
      })
      .nullable(),
    last_generated_time: Timestamp.nullable(),
  })
  .describe('A summary of /cashflow_report/insights/get; the full insights are in the store.');
export type InsightsSummary = z.infer<typeof InsightsSummary>;

export const ReportFetchedData = z
  .object({
    ...FetchFollows,
    window_start: IsoDate.describe(
      'First day of the window: transactions dated from here on that Plaid no longer returns were removed; older ones were left alone.',
    ),
    last_successful_update_time: Timestamp.describe(
      'Plaid’s last_successful_update_time, the same on every page of the fetch.',
    ),
    pages: Count.min(1).describe('Pages of /cashflow_report/get read in the fetch’s final pass.'),
    restarts: Count.describe(
      'Times the paging started over because the data changed during pagination.',
    ),
    accounts: Count,
    transactions: Count.describe('Transactions Plaid returned for the window.'),
    added: Count.describe('Transactions new to the store (or back after being removed).'),
    modified: Count.describe('Transactions whose content changed, same transaction_id.'),
    removed: Count.describe('Transactions in the window Plaid no longer returns.'),
    oldest_transaction_date: IsoDate.nullable(),
    newest_transaction_date: IsoDate.nullable(),
    insights: InsightsSummary.nullable().describe(
      'null when the Item has no account Plaid gives insights for.',
    ),
    changelog: z
      .boolean()
      .describe('Whether the changes went to the transactions changelog topic.'),
    fetched_at: Timestamp.describe('When the snapshot was stored.'),
    duration_ms: Count.describe('From the first page asked for to the snapshot stored.'),
  })
  .meta({ title: 'ReportFetched v1 data' })
  .describe(
    'The Item’s Cashflow Report was read from Plaid and stored as the truth for its window: counts of what changed.',
  );
export type ReportFetchedData = z.infer<typeof ReportFetchedData>;

/**
 * A failure of the fetcher itself. Known codes: TOKEN_UNREADABLE, UNKNOWN_ITEM, PLAID_TIMEOUT,
 * PLAID_UNREACHABLE, PLAID_INVALID_RESPONSE, DATA_KEPT_CHANGING (the data changed during
 * pagination more often than the fetcher starts over), INCOMPLETE_REPORT (fewer transactions than
 * Plaid's total_transactions).
 */
export const FetcherFailure = z.object({
  source: z.literal('fetcher'),
  error_code: z.string().min(1),
  error_message: z.string(),
});

export const FetchFailure = z.discriminatedUnion('source', [PlaidCallFailure, FetcherFailure]);
export type FetchFailure = z.infer<typeof FetchFailure>;

export const ReportFetchFailedData = z
  .object({
    ...FetchFollows,
    error: FetchFailure,
    retryable: z
      .boolean()
      .describe(
        'Whether fetching again later may succeed without anyone changing anything (the fetcher gave up after its attempts); false for Item errors such as ITEM_LOGIN_REQUIRED.',
      ),
    attempts: Count.describe('Fetch attempts made.'),
    failed_at: Timestamp,
  })
  .meta({ title: 'ReportFetchFailed v1 data' })
  .describe(
    'The report could not be read from Plaid; the stored data of the Item is unchanged. A later report, or `report fetch`, tries again.',
  );
export type ReportFetchFailedData = z.infer<typeof ReportFetchFailedData>;
