/**
 * The read API's report answers: an Item's stored Cashflow Report (what the report fetcher
 * wrote) and its transactions, as zod schemas: parameters are validated with them and the
 * OpenAPI document (openapi.ts) is generated from them.
 */
import { InsightsSummary } from '@cashflow/contracts';
import { z } from 'zod';
import { PageCursor, PageLimit } from './read-api.schemas';

const Time = z.iso.datetime({ offset: true });
const IsoDate = z.iso.date().describe('A calendar date, YYYY-MM-DD.');
const Count = z.number().int().min(0);

export const ReportFetch = z
  .object({
    fetch_id: z.string(),
    fetched_at: Time.describe('When the report was stored.'),
    report_event_id: z.string().describe('Event id of the ReportReady the fetch followed.'),
    report_received_at: Time,
    days_requested: z.number().int().describe('The window fetched, in days.'),
    refresh_request_ids: z
      .array(z.string())
      .describe('The refresh requests whose data the fetch brought.'),
    window_start: IsoDate.describe(
      'First day of the window: transactions from here on that Plaid no longer returned were removed.',
    ),
    last_successful_update_time: Time.describe(
      "Plaid's last_successful_update_time: how fresh the data is.",
    ),
    pages: Count,
    restarts: Count.describe('Times the paging started over because the data moved.'),
    accounts: Count,
    transactions: Count.describe('Transactions Plaid returned for the window.'),
    added: Count,
    modified: Count,
    removed: Count,
    duration_ms: Count,
  })
  .describe('The newest fetch that stored the report.');

export const ReportFetchFailure = z
  .object({
    fetch_id: z.string(),
    failed_at: Time,
    report_event_id: z.string(),
    error: z.object({
      source: z.enum(['plaid', 'fetcher']).describe("Plaid's error, or the fetcher's own."),
      code: z.string(),
      message: z.string(),
    }),
    retryable: z.boolean(),
    attempts: Count,
  })
  .describe('A fetch that failed; the stored report stayed as it was.');

const Balances = z.object({
  available: z.number().nullable(),
  current: z.number().nullable(),
  limit: z.number().nullable(),
  iso_currency_code: z.string().nullable(),
  unofficial_currency_code: z.string().nullable(),
});

export const ReportAccount = z.object({
  account_id: z.string(),
  name: z.string().nullable(),
  official_name: z.string().nullable(),
  type: z.string().nullable(),
  subtype: z.string().nullable(),
  mask: z.string().nullable(),
  balances: Balances.nullable().describe('As of the fetch that last changed the account.'),
});

export const ItemReport = z.object({
  item_id: z.string(),
  fetch: ReportFetch,
  accounts: z.array(ReportAccount).describe('The accounts as the newest fetch saw them.'),
  transactions: z
    .object({
      current: Count.describe('Stored transactions Plaid still returns.'),
      removed: Count.describe('Stored transactions Plaid no longer returns in its window.'),
      oldest_date: IsoDate.nullable().describe('Of the current ones.'),
      newest_date: IsoDate.nullable().describe('Of the current ones.'),
    })
    .describe('Counts of the stored transactions (GET /items/{item_id}/transactions lists them).'),
  insights: InsightsSummary.nullable().describe(
    'A summary of the stored insights (/cashflow_report/insights/get); null when Plaid gave none.',
  ),
  last_failure: ReportFetchFailure.nullable().describe(
    'The newest failed fetch, when it ended after `fetch`; null otherwise.',
  ),
});

export const TransactionQuery = z.object({
  limit: PageLimit,
  cursor: PageCursor,
  include_removed: z
    .enum(['true', 'false'])
    .optional()
    .describe('true: removed transactions too (removed_at set); by default only current ones.'),
  account_id: z.string().min(1).max(256).optional().describe('Only this account’s.'),
  since: IsoDate.optional().describe('Only transactions dated this day or later.'),
  until: IsoDate.optional().describe('Only transactions dated this day or earlier.'),
});

export const StoredTransaction = z
  .looseObject({
    transaction_id: z.string(),
    account_id: z.string(),
    date: IsoDate,
    amount: z.number(),
    pending: z.boolean(),
    first_seen_at: Time.describe('When a fetch first stored it.'),
    last_changed_at: Time.describe('When a fetch last changed it (or removed it).'),
    removed_at: Time.nullable().describe('When Plaid stopped returning it; null while current.'),
  })
  .describe(
    'The transaction as Plaid gave it (every field Plaid sent), plus when it was first seen, last changed and removed.',
  );

export const TransactionPage = z.object({
  transactions: z.array(StoredTransaction).describe('Newest first: by date, then transaction_id.'),
  next_cursor: z.string().nullable().describe('Pass as cursor for the next page; null at the end.'),
});
