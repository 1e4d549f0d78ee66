/**
 * The report fetcher as the fault scenarios see it: when it has nothing left to do, what it
 * stored and published, and the promises checked here directly, besides `check`: no report
 * fetched twice, and each Item's stored transactions are what the sandbox serves now.
 */
import {
  decodeEvent,
  topicName,
  type CashflowEvent,
  type ReportFetched,
  type TopicKey,
} from '@cashflow/contracts';
import { readEndOffsets } from '@cashflow/kafka';
import { collect, uncommitted } from '../support/kafka';
import { waitFor } from '../support/wait-for';
import type { FaultSystem } from './fault-system';
import { inParallel } from './load';

/** What the fetcher did in a scenario, for the result table. */
export interface FetcherFigures {
  /** ReportFetched (distinct fetches). */
  readonly fetches: number;
  /** ReportFetchFailed: fetches given up. */
  readonly fetch_failures: number;
  /** Failed attempts (errors that pass) before the stored fetches succeeded. */
  readonly fetch_retries: number;
  /** Times paging started over because the data changed under it. */
  readonly fetch_restarts: number;
  /** Fetches of a report already fetched, for a larger window (rule 5 of item-fetches). */
  readonly refetched_wider: number;
  /** Stored transactions that are not removed. */
  readonly transactions_stored: number;
  /** /cashflow_report/get calls the sandbox answered, errors included. */
  readonly get_calls: number;
}

/** A sandbox Item as GET /sandbox/items describes it (what is read here). */
export interface SandboxItemView {
  readonly item_id: string;
  readonly generation: number;
  readonly last_successful_update_time: string;
  readonly get_calls: number;
}

/** Every Item the sandbox has, with its generation and /get call count. */
export async function sandboxItems(system: FaultSystem): Promise<SandboxItemView[]> {
  const { status, body } = await system.sandbox.admin('GET', '/items');
  if (status !== 200) throw new Error(`GET /sandbox/items answered ${status}`);
  return body.items as SandboxItemView[];
}

/** The Items whose fetch is under way now: a plan running under a live claim. */
export async function fetchesUnderWay(system: FaultSystem): Promise<string[]> {
  const rows = await system.rows(
    `SELECT item_id FROM report_fetch_items
      WHERE claim_token IS NOT NULL AND claimed_until > now()
        AND state->'running' IS NOT NULL AND state->'running' <> 'null'::jsonb`,
  );
  return rows.map((r) => r.item_id as string);
}

/**
 * What the fetcher still has to do, or undefined when it is idle: its group has consumed the
 * refresh outcomes and reports up to their ends, no fetch is due, claimed or waiting to retry,
 * and every ended fetch is published.
 */
async function fetcherOutstanding(system: FaultSystem): Promise<string | undefined> {
  const topics = [
    topicName('reportOutcomes', system.prefix),
    topicName('refreshOutcomes', system.prefix),
  ];
  const ends = await readEndOffsets(system.kafka, topics);
  const admin = system.kafka.admin();
  await admin.connect();
  try {
    const behind = await uncommitted(admin, system.fetcherGroup, ends);
    if (behind > 0n) return `${behind} records not yet consumed`;
  } finally {
    await admin.disconnect();
  }
  const busy = await system.count(
    // A poll for an overdue report is due later (REPORT_OVERDUE_AFTER_MS): not work left now.
    'SELECT count(*) AS n FROM report_fetch_items WHERE due_at <= now() OR claim_token IS NOT NULL',
  );
  if (busy !== 0) return `${busy ?? 'unknown'} Items with a fetch or poll due, or claimed`;
  const unpublishedPolls = await system.count(
    'SELECT count(*) AS n FROM report_polls WHERE published_at IS NULL',
  );
  if (unpublishedPolls !== 0) return `${unpublishedPolls ?? 'unknown'} polls not yet published`;
  const unpublished = await system.count(
    'SELECT count(*) AS n FROM report_fetches WHERE published_at IS NULL',
  );
  if (unpublished !== 0) return `${unpublished ?? 'unknown'} fetches not yet published`;
  return undefined;
}

/** Waits until the fetcher has nothing left to do (see fetcherOutstanding). */
export async function fetcherSettled(system: FaultSystem, timeoutMs: number): Promise<void> {
  let outstanding = 'not looked at yet';
  try {
    await waitFor(
      'the report fetcher settled',
      async () => {
        outstanding = (await fetcherOutstanding(system)) ?? '';
        return outstanding === '' ? true : undefined;
      },
      timeoutMs,
      1000,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; still: ${outstanding}`, { cause: error });
  }
}

/** Every event on the system's `topics`, each once (a copy published again has the same id). */
export async function readEvents(
  system: FaultSystem,
  topics: readonly TopicKey[],
): Promise<CashflowEvent[]> {
  const reader = await collect(
    system.kafka,
    topics.map((t) => topicName(t, system.prefix)),
  );
  try {
    const byId = new Map<string, CashflowEvent>();
    for (const r of await reader.toEnd(60_000)) {
      const decoded = decodeEvent(r.message);
      if (decoded.ok) byId.set(decoded.value.metadata.id, decoded.value);
    }
    return [...byId.values()];
  } finally {
    await reader.stop();
  }
}

export const isFetched = (e: CashflowEvent): e is ReportFetched => e.type === 'ReportFetched';

interface LastFetch {
  readonly item_id: string;
  readonly days_requested: number;
  readonly window_start: string;
  readonly last_successful_update_time: Date;
}

/**
 * Reads what the fetcher did, and checks what `check` takes on trust from the store:
 * - no report was fetched twice: each ReportFetched's report was not fetched before over the
 *   same or a larger window (a larger window is rule 5's one more fetch of the same report);
 * - every Item whose data the sandbox moved on (a refresh completed, its report delivered) has
 *   its newest data stored: its last fetch saw the sandbox's current last_successful_update_time,
 *   and its stored transactions (not removed) in that fetch's window are exactly the ids the
 *   sandbox serves for it: none missing, none extra;
 * - every fetch stored is on the topic and every ReportFetched on the topic is stored.
 */
export async function fetcherFindings(
  system: FaultSystem,
): Promise<{ figures: FetcherFigures; problems: string[] }> {
  const problems: string[] = [];
  const problem = (line: string) => {
    if (problems.length < 20) problems.push(line);
    else if (problems.length === 20) problems.push('(more left out)');
  };

  const outcomes = await system.rows(
    `SELECT outcome, count(*)::int AS n, coalesce(sum(restarts), 0)::int AS restarts,
            coalesce(sum(attempts - 1), 0)::int AS retries
       FROM report_fetches GROUP BY outcome`,
  );
  const of = (outcome: string) => outcomes.find((r) => r.outcome === outcome);
  const storedCount = Number(
    (
      await system.rows(
        'SELECT count(*)::int AS n FROM report_transactions WHERE removed_at IS NULL',
      )
    )[0]?.n ?? 0,
  );

  const events = (await readEvents(system, ['reportFetches'])).filter(isFetched);
  const storedIds = new Set(
    (await system.rows("SELECT fetch_id FROM report_fetches WHERE outcome = 'fetched'")).map(
      (r) => r.fetch_id as string,
    ),
  );
  for (const e of events) {
    if (!storedIds.has(e.data.fetch_id))
      problem(`fetch ${e.data.fetch_id}: on the topic, not stored`);
  }
  const published = new Set(events.map((e) => e.data.fetch_id));
  for (const id of storedIds) if (!published.has(id)) problem(`fetch ${id}: stored, not published`);

  // No second fetch of a report unless over a larger window. (readEvents keeps one of each
  // event id: a fetch published twice, when marking it published failed, is one fetch.)
  const byReport = new Map<string, ReportFetched[]>();
  const repeated = new Set<string>();
  for (const e of events) {
    byReport.set(e.data.report_event_id, [...(byReport.get(e.data.report_event_id) ?? []), e]);
  }
  let refetchedWider = 0;
  for (const [report, fetches] of byReport) {
    const ordered = [...fetches].sort((a, b) => (a.data.fetched_at < b.data.fetched_at ? -1 : 1));
    for (let i = 1; i < ordered.length; i += 1) {
      const before = Math.max(...ordered.slice(0, i).map((f) => f.data.days_requested));
      if (ordered[i]!.data.days_requested > before) refetchedWider += 1;
      else {
        // Each fetch with what decided it, to tell a repeated fetch's cause from the log.
        const detail = ordered
          .map(
            (f) =>
              `${f.data.fetch_id} at ${f.data.fetched_at}: ${f.data.days_requested} days, data of ${f.data.last_successful_update_time}, brought [${f.data.refresh_request_ids.join(' ')}]`,
          )
          .join('; ');
        repeated.add(ordered[i]!.data.item_id);
        problem(
          `report ${report} of item ${ordered[i]!.data.item_id} (received ${ordered[i]!.data.report_received_at}): fetched ${ordered.length} times (${ordered.map((f) => f.data.days_requested).join(', ')} days): ${detail}`,
        );
      }
    }
  }

  if (repeated.size > 0) {
    // What the fetcher read for those Items, in the order of the log, to tell why.
    for (const e of await readEvents(system, ['refreshOutcomes', 'reportOutcomes'])) {
      if (!repeated.has(e.data.item_id)) continue;
      if (e.type === 'RefreshAccepted') {
        problem(
          `  ${e.data.item_id}: RefreshAccepted ${e.data.refresh_request_id} ${e.data.days_requested} days at ${e.data.accepted_at}`,
        );
      } else if (e.type === 'ReportReady') {
        problem(`  ${e.data.item_id}: ReportReady ${e.metadata.id} received ${e.data.received_at}`);
      }
    }
  }

  // Each Item's stored transactions against what the sandbox serves now.
  const lastFetches = new Map(
    (
      await system.rows(
        `SELECT DISTINCT ON (item_id) item_id, days_requested, window_start::text AS window_start,
                last_successful_update_time
           FROM report_fetches WHERE outcome = 'fetched'
          ORDER BY item_id, finished_at DESC`,
      )
    ).map((r) => [r.item_id as string, r as unknown as LastFetch]),
  );
  const storedInWindow = new Map<string, Set<string>>();
  for (const r of await system.rows(
    `SELECT t.item_id, t.transaction_id
       FROM report_transactions t
       JOIN (SELECT DISTINCT ON (item_id) item_id, window_start FROM report_fetches
              WHERE outcome = 'fetched' ORDER BY item_id, finished_at DESC) f
         ON f.item_id = t.item_id
      WHERE t.removed_at IS NULL AND t.date >= f.window_start`,
  )) {
    const ids = storedInWindow.get(r.item_id as string) ?? new Set<string>();
    ids.add(r.transaction_id as string);
    storedInWindow.set(r.item_id as string, ids);
  }
  const items = await sandboxItems(system);
  await inParallel(items, 8, async (item) => {
    const last = lastFetches.get(item.item_id);
    if (!last) {
      // Generation 0: no refresh completed, so no report with data was sent.
      if (item.generation > 0) {
        problem(`item ${item.item_id}: generation ${item.generation} served, never fetched`);
      }
      return;
    }
    if (
      Date.parse(item.last_successful_update_time) !== last.last_successful_update_time.getTime()
    ) {
      problem(
        `item ${item.item_id}: the sandbox serves generation ${item.generation} of ${item.last_successful_update_time}, the last fetch stored ${last.last_successful_update_time.toISOString()}`,
      );
      return;
    }
    const url = `/items/${encodeURIComponent(item.item_id)}/transactions?days_requested=${last.days_requested}`;
    const { status, body } = await system.sandbox.admin('GET', url);
    if (status !== 200) throw new Error(`GET /sandbox${url} answered ${status}`);
    const served = new Set(
      (body.transactions as { transaction_id: string; date: string }[])
        .filter((t) => t.date >= last.window_start)
        .map((t) => t.transaction_id),
    );
    const stored = storedInWindow.get(item.item_id) ?? new Set<string>();
    const missing = [...served].filter((id) => !stored.has(id));
    const extra = [...stored].filter((id) => !served.has(id));
    if (missing.length + extra.length > 0) {
      problem(
        `item ${item.item_id}: ${missing.length} served but not stored (${missing.slice(0, 3).join(', ')}), ${extra.length} stored but not served (${extra.slice(0, 3).join(', ')})`,
      );
    }
  });

  return {
    figures: {
      fetches: Number(of('fetched')?.n ?? 0),
      fetch_failures: Number(of('failed')?.n ?? 0),
      fetch_retries: Number(of('fetched')?.retries ?? 0),
      fetch_restarts: Number(of('fetched')?.restarts ?? 0),
      refetched_wider: refetchedWider,
      transactions_stored: storedCount,
      get_calls: items.reduce((sum, i) => sum + i.get_calls, 0),
    },
    problems,
  };
}
