import { randomUUID } from 'node:crypto';
import type { Row } from './projector';

/**
 * Rows of the report fetcher's tables as it writes them, inserted directly: for tests of what
 * reads them (the projector's read API, the CLI). The fetcher's own tests cover how they get
 * there.
 */

/** Runs SQL on the test database: a ProjectorWorld's `rows`. */
type Sql = (query: string, params?: unknown[]) => Promise<Row[]>;

export interface StoredFetch {
  readonly outcome: 'fetched' | 'failed';
  readonly finishedAt: string;
  readonly transactions?: number;
}

export const STORED_INSIGHTS = {
  months: 3,
  historical_balance_days: 90,
  latest_month: {
    start_date: '2026-11-01',
    end_date: '2026-11-30',
    total_revenue: 5120.5,
    ending_balance: 4200,
    average_daily_net_cashflow: 12.25,
  },
  last_generated_time: '2026-11-24T10:01:00.000Z',
};

export const FETCH_ERROR = {
  source: 'plaid',
  error_type: 'ITEM_ERROR',
  error_code: 'ITEM_LOGIN_REQUIRED',
  error_message: 'the login details of this item have changed',
  display_message: null,
  plaid_request_id: 'plaid-1',
  http_status: 400,
};

/** A report_fetches row with the event it published; its fetch id. */
export async function storeFetch(sql: Sql, itemId: string, fetch: StoredFetch): Promise<string> {
  const fetchId = randomUUID();
  const fetched = fetch.outcome === 'fetched';
  const data = fetched
    ? { insights: STORED_INSIGHTS, fetched_at: fetch.finishedAt }
    : { error: FETCH_ERROR, retryable: false, failed_at: fetch.finishedAt };
  await sql(
    `INSERT INTO report_fetches
       (fetch_id, item_id, outcome, report_event_id, report_received_at, days_requested,
        refresh_request_ids, window_start, last_successful_update_time, pages, restarts,
        accounts, transactions, added, modified, removed, error_code, error, attempts,
        started_at, finished_at, duration_ms, event, changelog_pending, published_at)
     VALUES ($1, $2, $3, 'report-1', '2026-11-24T10:00:30Z', 90, $4, $5, $6, $7, 0, $8, $9,
             $9, 0, 0, $10, $11, 1, $12::timestamptz - interval '2 seconds', $12, 2000, $13,
             false, now())`,
    [
      fetchId,
      itemId,
      fetch.outcome,
      fetched ? ['request-1'] : [],
      fetched ? '2026-08-27' : null,
      fetched ? '2026-11-24T10:00:00Z' : null,
      fetched ? 1 : null,
      fetched ? 2 : null,
      fetched ? (fetch.transactions ?? 5) : null,
      fetched ? null : FETCH_ERROR.error_code,
      fetched ? null : JSON.stringify(FETCH_ERROR),
      fetch.finishedAt,
      JSON.stringify({ type: fetched ? 'ReportFetched' : 'ReportFetchFailed', data }),
    ],
  );
  return fetchId;
}

/** A transaction as Plaid's /cashflow_report/get gives it (the fields the tests look at). */
export const plaidTransaction = (id: string, date: string, account = 'acc-checking') => ({
  transaction_id: id,
  account_id: account,
  date,
  amount: 12.5,
  pending: false,
  name: `Coffee ${id}`,
  iso_currency_code: 'USD',
});

export const CHECKING = {
  account_id: 'acc-checking',
  name: 'Plaid Checking',
  official_name: null,
  type: 'depository',
  subtype: 'checking',
  mask: '0000',
  balances: {
    available: 4200,
    current: 4200,
    limit: null,
    iso_currency_code: 'USD',
    unofficial_currency_code: null,
  },
};

/**
 * A stored report of a new Item: one fetch, two accounts, insights, and transactions t-a .. t-e
 * (t-d removed), or `count` generated ones (t-00000, t-00001, ... one a day back from
 * 2026-11-24) instead.
 */
export async function storeReport(sql: Sql, count?: number) {
  const itemId = `item-${randomUUID()}`;
  const fetchId = await storeFetch(sql, itemId, {
    outcome: 'fetched',
    finishedAt: '2026-11-24T10:01:00Z',
    ...(count === undefined ? {} : { transactions: count }),
  });
  for (const account of [
    CHECKING,
    { account_id: 'acc-card', name: 'Plaid Credit Card', type: 'credit' },
  ]) {
    await sql(
      `INSERT INTO report_accounts (item_id, account_id, content, last_fetch_id, updated_at)
       VALUES ($1, $2, $3, $4, now())`,
      [itemId, account.account_id, JSON.stringify(account), fetchId],
    );
  }
  await sql(
    `INSERT INTO report_insights (item_id, content, last_generated_time, last_fetch_id, updated_at)
     VALUES ($1, '{"accounts": []}', '2026-11-24T10:01:00Z', $2, now())`,
    [itemId, fetchId],
  );
  const stored =
    count === undefined
      ? [
          { t: plaidTransaction('t-b', '2026-11-20'), removed: false },
          { t: plaidTransaction('t-a', '2026-11-20'), removed: false },
          { t: plaidTransaction('t-c', '2026-11-22', 'acc-card'), removed: false },
          { t: plaidTransaction('t-d', '2026-11-21'), removed: true },
          { t: plaidTransaction('t-e', '2026-10-02'), removed: false },
        ]
      : Array.from({ length: count }, (_, n) => ({
          t: plaidTransaction(
            `t-${String(n).padStart(5, '0')}`,
            new Date(Date.parse('2026-11-24') - n * 86_400_000).toISOString().slice(0, 10),
          ),
          removed: false,
        }));
  await sql(
    `INSERT INTO report_transactions
       (item_id, transaction_id, account_id, date, amount, pending, content, first_seen_at,
        last_changed_at, removed_at, first_fetch_id, last_fetch_id, last_change)
     SELECT $1, t->>'transaction_id', t->>'account_id', (t->>'date')::date,
            (t->>'amount')::numeric, (t->>'pending')::boolean, t, '2026-11-24T10:01:00Z',
            '2026-11-24T10:01:00Z', CASE WHEN s.removed THEN timestamptz '2026-11-24T10:01:00Z' END,
            $2, $2, CASE WHEN s.removed THEN 'removed' ELSE 'added' END
       FROM jsonb_to_recordset($3::jsonb) AS s(t jsonb, removed boolean)`,
    [itemId, fetchId, JSON.stringify(stored)],
  );
  return { itemId, fetchId };
}
