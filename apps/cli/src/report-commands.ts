import { ItemId } from '@cashflow/contracts';
import type { Command } from 'commander';
import { z } from 'zod';
import { parseOption } from './options';
import { print, textTable } from './output';
import { projectorApi, reportFetcherApi } from './service-apis';

type Row = Record<string, unknown>;

/** Transactions `report show` lists under the summary. */
const NEWEST_SHOWN = 5;

/** The read API's page size limit. */
const MAX_PAGE = 500;

/** A value in a line of text; absent shows as "-". */
function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return value === null || value === undefined ? '-' : JSON.stringify(value);
}

const path = (rawItemId: string, rest: string) =>
  `/items/${encodeURIComponent(ItemId.parse(rawItemId))}/${rest}`;

/**
 * `report show`, `report transactions` (the stored report, from the projector's read API) and
 * `report fetch` (asks the report fetcher to fetch the Item's report again now).
 */
export function addReportCommands(program: Command): void {
  const report = program
    .command('report')
    .description(
      "An Item's stored Cashflow Report: its summary and transactions (PROJECTOR_URL, PROJECTOR_API_TOKEN); fetch it again (REPORT_FETCHER_URL, ADMIN_API_TOKEN).",
    );
  addShowCommand(report);
  addTransactionsCommand(report);
  addFetchCommand(report);
}

function addShowCommand(report: Command): void {
  report
    .command('show <item_id>')
    .description(
      `The newest fetch, accounts, transaction counts, insights and the ${NEWEST_SHOWN} newest transactions.`,
    )
    .option('--json', 'print JSON')
    .action(async (rawItemId: string, opts: { json?: boolean }) => {
      const summary = (await projectorApi(path(rawItemId, 'report'))) as Row;
      const newest = (
        (await projectorApi(path(rawItemId, `transactions?limit=${NEWEST_SHOWN}`))) as {
          transactions: Row[];
        }
      ).transactions;
      print(Boolean(opts.json), { ...summary, newest_transactions: newest }, () =>
        reportText(summary, newest),
      );
    });
}

function reportText(summary: Row, newest: Row[]): string {
  const fetch = summary.fetch as Row;
  const counts = summary.transactions as Row;
  const insights = summary.insights as Row | null;
  const failure = summary.last_failure as Row | null;
  const lines = [
    `${text(summary.item_id)}: report fetched ${text(fetch.fetched_at)} (fetch ${text(fetch.fetch_id)})`,
    `  data as of ${text(fetch.last_successful_update_time)}, ${text(fetch.days_requested)} days from ${text(fetch.window_start)}`,
    `  ${text(counts.current)} transactions stored (${text(counts.removed)} removed), dated ${text(counts.oldest_date)} to ${text(counts.newest_date)}`,
    `  that fetch: ${text(fetch.transactions)} returned, ${text(fetch.added)} added, ${text(fetch.modified)} modified, ${text(fetch.removed)} removed`,
  ];
  const month = insights?.latest_month as Row | null | undefined;
  if (month) {
    lines.push(
      `  insights: ${text(insights!.months)} months; ${text(month.start_date)} to ${text(month.end_date)}: revenue ${text(month.total_revenue)}, ending balance ${text(month.ending_balance)}, average daily net ${text(month.average_daily_net_cashflow)}`,
    );
  }
  if (failure) {
    const error = failure.error as Row;
    lines.push(
      `  last fetch FAILED at ${text(failure.failed_at)}: ${text(error.code)} (${text(error.source)}): ${text(error.message)}`,
    );
  }
  const accounts = (summary.accounts as Row[]).map((a) => ({
    ...a,
    current: (a.balances as Row | null)?.current ?? null,
    available: (a.balances as Row | null)?.available ?? null,
  }));
  lines.push(
    '',
    textTable(accounts, ['account_id', 'name', 'type', 'subtype', 'mask', 'current', 'available']),
    '',
    textTable(newest, ['date', 'transaction_id', 'account_id', 'amount', 'pending', 'name']),
  );
  return lines.join('\n');
}

interface TransactionsOptions {
  readonly limit: string;
  readonly includeRemoved?: boolean;
  readonly account?: string;
  readonly since?: string;
  readonly until?: string;
  readonly json?: boolean;
}

function addTransactionsCommand(report: Command): void {
  report
    .command('transactions <item_id>')
    .description('Stored transactions, newest first; removed ones only with --include-removed.')
    .option('--limit <n>', 'at most this many', '50')
    .option('--include-removed', 'removed transactions too (with removed_at)')
    .option('--account <account_id>', "only this account's")
    .option('--since <date>', 'only those dated this day (YYYY-MM-DD) or later')
    .option('--until <date>', 'only those dated this day or earlier')
    .option('--json', 'print one JSON line per transaction')
    .action(async (rawItemId: string, opts: TransactionsOptions) => {
      const wanted = parseOption('--limit', z.coerce.number().int().min(1), opts.limit);
      const query = new URLSearchParams();
      if (opts.includeRemoved) query.set('include_removed', 'true');
      if (opts.account) query.set('account_id', opts.account);
      if (opts.since) query.set('since', parseOption('--since', z.iso.date(), opts.since));
      if (opts.until) query.set('until', parseOption('--until', z.iso.date(), opts.until));
      const rows = await transactions(rawItemId, query, wanted);
      if (opts.json) {
        for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
        return;
      }
      const columns = ['date', 'transaction_id', 'account_id', 'amount', 'pending', 'name'];
      process.stdout.write(
        `${textTable(rows, opts.includeRemoved ? [...columns, 'removed_at'] : columns)}\n`,
      );
    });
}

/** Up to `wanted` transactions, a page of at most MAX_PAGE at a time. */
async function transactions(rawItemId: string, query: URLSearchParams, wanted: number) {
  const rows: Row[] = [];
  let cursor: string | null = null;
  do {
    const page = new URLSearchParams(query);
    page.set('limit', String(Math.min(MAX_PAGE, wanted - rows.length)));
    if (cursor) page.set('cursor', cursor);
    const answer = (await projectorApi(path(rawItemId, `transactions?${page.toString()}`))) as {
      transactions: Row[];
      next_cursor: string | null;
    };
    rows.push(...answer.transactions);
    cursor = answer.next_cursor;
  } while (cursor && rows.length < wanted);
  return rows;
}

function addFetchCommand(report: Command): void {
  report
    .command('fetch <item_id>')
    .description(
      "Ask the report fetcher to fetch the Item's latest report again now (REPORT_FETCHER_URL, ADMIN_API_TOKEN); `report show` shows it once stored.",
    )
    .option('--json', 'print JSON')
    .action(async (rawItemId: string, opts: { json?: boolean }) => {
      const asked = (await reportFetcherApi('POST', path(rawItemId, 'report-fetch'))) as Row;
      print(
        Boolean(opts.json),
        asked,
        () =>
          `fetch asked for ${text(asked.item_id)}: report ${text(asked.report_event_id)}, ${text(asked.days_requested)} days, ${asked.due ? 'due now' : 'due later (after the fetch under way, or a retry wait)'}`,
      );
    });
}
