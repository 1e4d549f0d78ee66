import {
  FETCHER_SOURCE,
  createEvent,
  type InsightsSummary,
  type ReportFetchFailed,
  type ReportFetched,
  type FetchFailure,
} from '@cashflow/contracts';
import { traceFields } from '@cashflow/kafka';
import type { CashflowInsights, PlaidCallError, PlaidClient } from '@cashflow/plaid-client';
import type { DataSource, QueryRunner } from 'typeorm';
import type { FetchClaim, FetchStateStore } from './fetch-state-store';
import { broughtBy, evolve, type FetchPlan } from './item-fetches';
import type { SnapshotStore } from './snapshot-store';

export interface FetchSettings {
  readonly pageSize: number;
  /** Times one attempt starts its paging over because the data changed under it. */
  readonly maxRestarts: number;
  /** Whether the changes go to the changelog topic. */
  readonly changelog: boolean;
}

/** How one attempt at a fetch ended. */
export type AttemptResult =
  | { readonly kind: 'stored'; readonly event: ReportFetched }
  | { readonly kind: 'plaid_failed'; readonly error: PlaidCallError }
  /** The data changed during pagination more than maxRestarts times. */
  | { readonly kind: 'kept_changing'; readonly restarts: number }
  /** The claim was taken over meanwhile: this attempt's work was rolled back. */
  | { readonly kind: 'lost' };

/** Plaid's error for data that changed while it was paged (named so for /transactions/sync). */
const MUTATION_CODES = new Set(['TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION']);

/**
 * One attempt at fetching an Item's report: insights, then every page of /cashflow_report/get in
 * one database transaction (pages written as they arrive, never the whole report in memory),
 * then the removals inside the window, the fetch's row and the Item's new state, all committed
 * together and only while the claim is still held. When the data changes during pagination
 * (last_successful_update_time moves between pages, Plaid says so, or fewer transactions arrive
 * than total_transactions promised) the transaction is rolled back and paging starts over.
 */
export class ReportFetch {
  constructor(
    private readonly db: DataSource,
    private readonly states: FetchStateStore,
    private readonly snapshots: SnapshotStore,
    private readonly plaid: PlaidClient,
    private readonly settings: FetchSettings,
    private readonly now: () => number,
  ) {}

  async attempt(
    claim: FetchClaim,
    plan: FetchPlan,
    accessToken: string,
    fetchId: string,
  ): Promise<AttemptResult> {
    const startedAt = this.now();
    const insights = await this.plaid.getCashflowInsights(accessToken);
    if (!insights.ok) return { kind: 'plaid_failed', error: insights.error };
    for (let restarts = 0; restarts <= this.settings.maxRestarts; restarts++) {
      const tx = this.db.createQueryRunner();
      await tx.connect();
      await tx.startTransaction();
      let committed = false;
      try {
        const paged = await this.pageInto(tx, claim.itemId, plan, accessToken, fetchId);
        if (paged.kind === 'changed') continue;
        if (paged.kind === 'failed') return { kind: 'plaid_failed', error: paged.error };
        const at = new Date(this.now());
        const windowStart = windowStartOf(paged.lastSuccessfulUpdateTime, plan.days);
        const removed = await this.snapshots.removeUnseen(
          tx,
          claim.itemId,
          fetchId,
          at,
          windowStart,
          paged.seen,
        );
        await this.snapshots.writeAccounts(tx, claim.itemId, fetchId, at, paged.accounts);
        await this.snapshots.writeInsights(tx, claim.itemId, fetchId, at, insights.value);
        const state = await this.states.lockClaimed(tx, claim);
        if (!state) return { kind: 'lost' };
        const stored = {
          fetchId,
          report: plan.report,
          days: plan.days,
          lastSuccessfulUpdateTime: paged.lastSuccessfulUpdateTime,
          fetchedAt: at.toISOString(),
        };
        const requestIds = broughtBy(state, stored);
        const event = createEvent(
          'ReportFetched',
          {
            item_id: claim.itemId,
            fetch_id: fetchId,
            report_event_id: plan.report.eventId,
            report_received_at: plan.report.receivedAt,
            days_requested: plan.days,
            refresh_request_ids: requestIds,
            window_start: windowStart,
            last_successful_update_time: new Date(paged.lastSuccessfulUpdateTime).toISOString(),
            pages: paged.pages,
            restarts,
            accounts: paged.accounts.length,
            transactions: paged.seen.size,
            added: paged.added,
            modified: paged.modified,
            removed,
            oldest_transaction_date: paged.oldest,
            newest_transaction_date: paged.newest,
            insights: summarise(insights.value),
            changelog: this.settings.changelog,
            fetched_at: at.toISOString(),
            duration_ms: Math.max(0, at.getTime() - startedAt),
          },
          {
            id: fetchId,
            source: FETCHER_SOURCE,
            time: at.toISOString(),
            correlationId: requestIds[0] ?? plan.report.eventId,
            causationId: plan.report.eventId,
            ...traceFields(),
          },
        );
        await insertFetchRow(tx, event, claim.attempts + 1, startedAt, this.settings.changelog);
        await this.states.writeClaimed(
          tx,
          evolve(state, { kind: 'fetched', fetch: stored }, at.getTime()),
        );
        await tx.commitTransaction();
        committed = true;
        return { kind: 'stored', event };
      } finally {
        if (!committed && tx.isTransactionActive) await tx.rollbackTransaction().catch(() => {});
        await tx.release();
      }
    }
    return { kind: 'kept_changing', restarts: this.settings.maxRestarts + 1 };
  }

  /** Every page into the open transaction, or why paging must start over or stop. */
  private async pageInto(
    tx: QueryRunner,
    itemId: string,
    plan: FetchPlan,
    accessToken: string,
    fetchId: string,
  ): Promise<
    | { kind: 'failed'; error: PlaidCallError }
    | { kind: 'changed' }
    | {
        kind: 'paged';
        lastSuccessfulUpdateTime: string;
        pages: number;
        seen: Set<string>;
        accounts: readonly { account_id: string }[];
        added: number;
        modified: number;
        oldest: string | null;
        newest: string | null;
      }
  > {
    const seen = new Set<string>();
    let cursor = '';
    let pages = 0;
    let added = 0;
    let modified = 0;
    let oldest: string | null = null;
    let newest: string | null = null;
    let first: { lut: string; total: number; accounts: readonly { account_id: string }[] } | null =
      null;
    for (;;) {
      const page = await this.plaid.getCashflowReport(accessToken, {
        daysRequested: plan.days,
        count: this.settings.pageSize,
        cursor,
      });
      if (!page.ok) {
        const e = page.error;
        if (e.kind === 'plaid' && MUTATION_CODES.has(e.error.error_code))
          return { kind: 'changed' };
        return { kind: 'failed', error: e };
      }
      const p = page.value;
      if (!first) {
        first = {
          lut: p.last_successful_update_time,
          total: p.total_transactions,
          accounts: p.accounts,
        };
      } else if (p.last_successful_update_time !== first.lut) {
        return { kind: 'changed' };
      }
      const changes = await this.snapshots.writePage(
        tx,
        itemId,
        fetchId,
        new Date(this.now()),
        p.transactions,
      );
      added += changes.added;
      modified += changes.modified;
      for (const t of p.transactions) {
        seen.add(t.transaction_id);
        if (oldest === null || t.date < oldest) oldest = t.date;
        if (newest === null || t.date > newest) newest = t.date;
      }
      pages += 1;
      if (!p.has_more) break;
      cursor = p.next_cursor;
    }
    if (seen.size < first.total) return { kind: 'changed' };
    return {
      kind: 'paged',
      lastSuccessfulUpdateTime: first.lut,
      pages,
      seen,
      accounts: first.accounts,
      added,
      modified,
      oldest,
      newest,
    };
  }
}

/**
 * Writes a fetch that was given up: its row and ReportFetchFailed, and the Item's state, while
 * the claim is held. False when the claim was lost.
 */
export async function recordGivenUp(
  db: DataSource,
  states: FetchStateStore,
  claim: FetchClaim,
  plan: FetchPlan,
  fetchId: string,
  failure: { readonly error: FetchFailure; readonly retryable: boolean },
  startedAt: number,
  now: number,
): Promise<ReportFetchFailed | undefined> {
  return db.transaction(async (tx) => {
    const state = await states.lockClaimed(tx, claim);
    if (!state) return undefined;
    const at = new Date(now).toISOString();
    const event = createEvent(
      'ReportFetchFailed',
      {
        item_id: claim.itemId,
        fetch_id: fetchId,
        report_event_id: plan.report.eventId,
        report_received_at: plan.report.receivedAt,
        days_requested: plan.days,
        refresh_request_ids: [...(state.running?.requestIds ?? plan.requestIds)],
        error: failure.error,
        retryable: failure.retryable,
        attempts: claim.attempts + 1,
        failed_at: at,
      },
      {
        id: fetchId,
        source: FETCHER_SOURCE,
        time: at,
        correlationId: plan.requestIds[0] ?? plan.report.eventId,
        causationId: plan.report.eventId,
        ...traceFields(),
      },
    );
    await insertFetchRow(tx, event, claim.attempts + 1, startedAt, false);
    await states.writeClaimed(tx, evolve(state, { kind: 'failed', retryAt: null }, now));
    return event;
  });
}

async function insertFetchRow(
  tx: Pick<QueryRunner, 'query'>,
  event: ReportFetched | ReportFetchFailed,
  attempts: number,
  startedAt: number,
  changelog: boolean,
): Promise<void> {
  const d = event.data;
  const fetched = event.type === 'ReportFetched' ? event.data : undefined;
  const failed = event.type === 'ReportFetchFailed' ? event.data : undefined;
  const finishedAt = Date.parse(fetched?.fetched_at ?? failed!.failed_at);
  await tx.query(
    `INSERT INTO report_fetches
       (fetch_id, item_id, outcome, report_event_id, report_received_at, days_requested,
        refresh_request_ids, window_start, last_successful_update_time, pages, restarts,
        accounts, transactions, added, modified, removed, error_code, error, attempts,
        started_at, finished_at, duration_ms, event, changelog_pending)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             $19, $20, $21, $22, $23, $24)
     ON CONFLICT (fetch_id) DO NOTHING`,
    [
      d.fetch_id,
      d.item_id,
      fetched ? 'fetched' : 'failed',
      d.report_event_id,
      d.report_received_at,
      d.days_requested,
      d.refresh_request_ids,
      fetched?.window_start ?? null,
      fetched?.last_successful_update_time ?? null,
      fetched?.pages ?? null,
      fetched?.restarts ?? 0,
      fetched?.accounts ?? null,
      fetched?.transactions ?? null,
      fetched?.added ?? null,
      fetched?.modified ?? null,
      fetched?.removed ?? null,
      failed?.error.error_code ?? null,
      failed ? failed.error : null,
      attempts,
      new Date(startedAt),
      new Date(finishedAt),
      Math.max(0, finishedAt - startedAt),
      event,
      changelog && fetched !== undefined && fetched.added + fetched.modified + fetched.removed > 0,
    ],
  );
}

/** First day of the window: `days` days back from the data's day, that day included. */
export function windowStartOf(lastSuccessfulUpdateTime: string, days: number): string {
  const day = new Date(
    `${new Date(lastSuccessfulUpdateTime).toISOString().slice(0, 10)}T00:00:00Z`,
  );
  day.setUTCDate(day.getUTCDate() - (days - 1));
  return day.toISOString().slice(0, 10);
}

function summarise(insights: CashflowInsights): InsightsSummary | null {
  if (insights.accounts.length === 0) return null;
  const months = insights.account_insights.monthly_summaries;
  const latest = months.reduce<(typeof months)[number] | null>(
    (best, m) => (!best || m.end_date > best.end_date ? m : best),
    null,
  );
  const amount = (m: { amount: number | null } | null | undefined) => m?.amount ?? null;
  return {
    months: months.length,
    historical_balance_days: insights.account_insights.historical_balances.length,
    latest_month: latest
      ? {
          start_date: latest.start_date,
          end_date: latest.end_date,
          total_revenue: amount(latest.total_revenue),
          ending_balance: amount(latest.ending_balance),
          average_daily_net_cashflow: amount(latest.average_daily_net_cashflow_amount),
        }
      : null,
    last_generated_time: insights.last_generated_time
      ? new Date(insights.last_generated_time).toISOString()
      : null,
  };
}
