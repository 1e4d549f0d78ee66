import { queryRows } from '@cashflow/persistence';
import type {
  ItemReport,
  ReportAccount,
  ReportFetchFailure,
  TransactionPage,
  TransactionQuery,
} from '@cashflow/projection';
import type { DataSource, EntityManager } from 'typeorm';
import { z } from 'zod';
import { decodeCursor, encodeCursor } from './cursor';

type Row = Record<string, unknown>;
type Report = z.infer<typeof ItemReport>;
type Failure = z.infer<typeof ReportFetchFailure>;

/** A transaction's date (YYYY-MM-DD) and id: where the next page of newest-first rows starts. */
const TransactionCursor = z.tuple([z.iso.date(), z.string()]);

const iso = (value: unknown) => (value as Date).toISOString();

/** The Item's newest fetch with `outcome`, newest by when it ended, then fetch id (rule 11). */
const NEWEST_FETCH = `
  SELECT *, window_start::text AS window_start_day FROM report_fetches
   WHERE item_id = $1 AND outcome = $2
   ORDER BY finished_at DESC, fetch_id::text DESC LIMIT 1`;

function toFetch(row: Row): Report['fetch'] {
  return {
    fetch_id: row.fetch_id as string,
    fetched_at: iso(row.finished_at),
    report_event_id: row.report_event_id as string,
    report_received_at: iso(row.report_received_at),
    days_requested: row.days_requested as number,
    refresh_request_ids: row.refresh_request_ids as string[],
    window_start: row.window_start_day as string,
    last_successful_update_time: iso(row.last_successful_update_time),
    pages: row.pages as number,
    restarts: row.restarts as number,
    accounts: row.accounts as number,
    transactions: row.transactions as number,
    added: row.added as number,
    modified: row.modified as number,
    removed: row.removed as number,
    duration_ms: row.duration_ms as number,
  };
}

function toFailure(row: Row): Failure {
  const error = row.error as {
    source: 'plaid' | 'fetcher';
    error_code: string;
    error_message: string;
  };
  return {
    fetch_id: row.fetch_id as string,
    failed_at: iso(row.finished_at),
    report_event_id: row.report_event_id as string,
    error: { source: error.source, code: error.error_code, message: error.error_message },
    retryable: Boolean((row.event as { data?: { retryable?: boolean } }).data?.retryable),
    attempts: row.attempts as number,
  };
}

/** An account as Plaid gave it, in the API's shape: what Plaid left out is null. */
function toAccount(content: Record<string, unknown>): z.infer<typeof ReportAccount> {
  const text = (value: unknown) => (typeof value === 'string' ? value : null);
  const amount = (value: unknown) => (typeof value === 'number' ? value : null);
  const balances = content.balances as Record<string, unknown> | null | undefined;
  return {
    account_id: content.account_id as string,
    name: text(content.name),
    official_name: text(content.official_name),
    type: text(content.type),
    subtype: text(content.subtype),
    mask: text(content.mask),
    balances: balances
      ? {
          available: amount(balances.available),
          current: amount(balances.current),
          limit: amount(balances.limit),
          iso_currency_code: text(balances.iso_currency_code),
          unofficial_currency_code: text(balances.unofficial_currency_code),
        }
      : null,
  };
}

/** Why there is no report to show: nothing fetched, and the last failure when there was one. */
export class NoReportError extends Error {
  constructor(itemId: string, failure?: Failure) {
    super(
      `no report of item ${itemId} has been fetched${
        failure
          ? ` (its last fetch failed at ${failure.failed_at}: ${failure.error.code})`
          : ' (the report fetcher stores one after CASHFLOW_REPORT_READY)'
      }`,
    );
  }
}

/**
 * The read API's queries on the stored reports (the report fetcher's tables: report_fetches,
 * report_accounts, report_transactions, report_insights). People's bank transactions: served
 * to holders of a read API token, never to the ops role.
 */
export class ReportQueries {
  constructor(private readonly db: DataSource) {}

  /** The Item's report summary, read in one snapshot; NoReportError when nothing was fetched. */
  async report(itemId: string): Promise<Report> {
    return this.db.transaction('REPEATABLE READ', async (m) => {
      const [fetched] = await queryRows<Row>(m, NEWEST_FETCH, [itemId, 'fetched']);
      const [failed] = await queryRows<Row>(m, NEWEST_FETCH, [itemId, 'failed']);
      const failure = failed ? toFailure(failed) : undefined;
      if (!fetched) throw new NoReportError(itemId, failure);
      const fetch = toFetch(fetched);
      const accounts = await queryRows<{ content: Record<string, unknown> }>(
        m,
        'SELECT content FROM report_accounts WHERE item_id = $1 ORDER BY account_id',
        [itemId],
      );
      const [counts] = await queryRows<Row>(
        m,
        `SELECT count(*) FILTER (WHERE removed_at IS NULL)::int AS current,
                count(*) FILTER (WHERE removed_at IS NOT NULL)::int AS removed,
                (min(date) FILTER (WHERE removed_at IS NULL))::text AS oldest_date,
                (max(date) FILTER (WHERE removed_at IS NULL))::text AS newest_date
           FROM report_transactions WHERE item_id = $1`,
        [itemId],
      );
      return {
        item_id: itemId,
        fetch,
        accounts: accounts.map((a) => toAccount(a.content)),
        transactions: {
          current: counts!.current as number,
          removed: counts!.removed as number,
          oldest_date: counts!.oldest_date as string | null,
          newest_date: counts!.newest_date as string | null,
        },
        insights: await this.insights(m, itemId),
        last_failure:
          failure && Date.parse(failure.failed_at) > Date.parse(fetch.fetched_at) ? failure : null,
      };
    });
  }

  /**
   * The stored insights' summary: the one the fetch that stored them made (in its
   * ReportFetched), so the summary has one author, the fetcher.
   */
  private async insights(m: EntityManager, itemId: string): Promise<Report['insights']> {
    const [row] = await queryRows<{ summary: Report['insights'] }>(
      m,
      `SELECT f.event->'data'->'insights' AS summary
         FROM report_insights i JOIN report_fetches f ON f.fetch_id = i.last_fetch_id
        WHERE i.item_id = $1`,
      [itemId],
    );
    return row?.summary ?? null;
  }

  /** Whether a fetch ever stored the Item's report. */
  async fetched(itemId: string): Promise<boolean> {
    const [row] = await queryRows<{ found: boolean }>(
      this.db,
      `SELECT EXISTS (SELECT 1 FROM report_fetches WHERE item_id = $1 AND outcome = 'fetched')
          AS found`,
      [itemId],
    );
    return row?.found === true;
  }

  /** A page of the Item's stored transactions, newest first (date, then transaction_id). */
  async transactions(
    itemId: string,
    query: z.infer<typeof TransactionQuery>,
  ): Promise<z.infer<typeof TransactionPage>> {
    const params: unknown[] = [itemId];
    const param = (value: unknown) => `$${params.push(value)}`;
    const where = ['item_id = $1'];
    if (query.include_removed !== 'true') where.push('removed_at IS NULL');
    if (query.account_id) where.push(`account_id = ${param(query.account_id)}`);
    if (query.since) where.push(`date >= ${param(query.since)}::date`);
    if (query.until) where.push(`date <= ${param(query.until)}::date`);
    if (query.cursor) {
      const [date, id] = decodeCursor(query.cursor, TransactionCursor);
      const d = param(date);
      // Newest first: an earlier day, or the same day and a later id (the index's order).
      where.push(`(date < ${d}::date OR (date = ${d}::date AND transaction_id > ${param(id)}))`);
    }
    const rows = await queryRows<Row>(
      this.db,
      `SELECT transaction_id, date::text AS day, content, first_seen_at, last_changed_at,
              removed_at
         FROM report_transactions WHERE ${where.join(' AND ')}
        ORDER BY date DESC, transaction_id LIMIT ${param(query.limit + 1)}`,
      params,
    );
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      transactions: page.map((row) => ({
        ...(row.content as Record<string, unknown>),
        transaction_id: row.transaction_id as string,
        first_seen_at: iso(row.first_seen_at),
        last_changed_at: iso(row.last_changed_at),
        removed_at: row.removed_at === null ? null : iso(row.removed_at),
      })) as z.infer<typeof TransactionPage>['transactions'],
      next_cursor:
        rows.length > query.limit && last ? encodeCursor([last.day, last.transaction_id]) : null,
    };
  }
}
