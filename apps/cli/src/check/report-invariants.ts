/**
 * The report fetcher's promises, checked against what it wrote. Pure functions over what
 * `report-checks.ts` read, so each rule is tested without a broker or a database.
 *
 * 5. Every Item's latest ReportReady has a stored snapshot: a fetch (ReportFetched, or a
 *    ReportFetchFailed that gave up) of a report that answers the Item's latest acceptance
 *    answered by a ReportReady, whose data holds that acceptance (`dataHolds`: Plaid updated it
 *    no earlier); any fetch when the Item has no acceptance. A newer report the fetcher still
 *    owes is pending up to --max-pending (from when it was published: a report found by polling
 *    is received at its data's time, which may be long before). An acceptance the fetcher gave
 *    up on (named by a ReportOverdue) needs no snapshot: its data never came.
 * 5b. No ReportFetched names a request its data predates (accepted after the data's
 *    last_successful_update_time): such a request's data was never stored.
 * 6. With --sandbox: each Item's stored transactions equal what the sandbox serves for the last
 *    fetch's window, when the sandbox's data has not changed since that fetch.
 * 7. The changelog topic's compacted view equals the stored transactions that are not removed
 *    (Items with fetches not yet published are left for the next check).
 */
import { dataHolds, reportAnswers } from '@cashflow/projection';
import type { Finding, LogRecord } from './invariants';

const MAX_EXAMPLES = 5;

function examples() {
  const lines: string[] = [];
  let count = 0;
  return {
    add(line: string) {
      count += 1;
      if (lines.length < MAX_EXAMPLES) lines.push(line);
    },
    get count() {
      return count;
    },
    lines,
  };
}

export interface FetchedReportOptions {
  readonly now: number;
  readonly maxPendingMs: number;
}

/** Rule 5. */
export function checkFetchedReports(
  records: readonly LogRecord[],
  options: FetchedReportOptions,
): Finding {
  const name = 'every latest ReportReady has a stored snapshot';
  const latestReady = new Map<string, string>();
  const readyTimes = new Map<string, string[]>();
  const acceptances = new Map<string, { at: string; requestId: string }[]>();
  /** Per Item, when its newest ReportReady was published (polled_at for one found by polling). */
  const publishedAt = new Map<string, string>();
  const overdue = new Set<string>();
  /** Per Item, its fetches: the report's received_at, and the data's time (null: given up). */
  const fetches = new Map<string, { reportAt: string; dataAt: string | null }[]>();
  let fetchEvents = 0;
  for (const r of records) {
    const e = r.event;
    if (!e) continue;
    const item = e.data.item_id;
    if (e.type === 'ReportReady') {
      const at = new Date(e.data.received_at).toISOString();
      if (!latestReady.has(item) || latestReady.get(item)! < at) latestReady.set(item, at);
      readyTimes.set(item, [...(readyTimes.get(item) ?? []), at]);
      const published = new Date(e.data.poll?.polled_at ?? e.data.received_at).toISOString();
      if (!publishedAt.has(item) || publishedAt.get(item)! < published) {
        publishedAt.set(item, published);
      }
    } else if (e.type === 'ReportOverdue') {
      for (const id of e.data.refresh_request_ids) overdue.add(id);
    } else if (e.type === 'RefreshAccepted') {
      const at = new Date(e.data.accepted_at).toISOString();
      acceptances.set(item, [
        ...(acceptances.get(item) ?? []),
        { at, requestId: e.data.refresh_request_id },
      ]);
    } else if (e.type === 'ReportFetched' || e.type === 'ReportFetchFailed') {
      fetchEvents += 1;
      fetches.set(item, [
        ...(fetches.get(item) ?? []),
        {
          reportAt: new Date(e.data.report_received_at).toISOString(),
          dataAt: e.type === 'ReportFetched' ? e.data.last_successful_update_time : null,
        },
      ]);
    }
  }
  if (fetchEvents === 0) {
    return {
      name,
      holds: true,
      counts: { items: latestReady.size },
      examples: [],
      notes: ['no fetch events on the log: no report fetcher has run, so this was not checked'],
    };
  }
  const missing = examples();
  let pending = 0;
  for (const [item, latest] of latestReady) {
    const readies = readyTimes.get(item) ?? [];
    // The newest acceptance some ReportReady answers: the data the Item must have stored.
    const answered = (acceptances.get(item) ?? [])
      .filter((a) => !overdue.has(a.requestId) && readies.some((at) => reportAnswers(at, a.at)))
      .sort((a, b) => (a.at < b.at ? 1 : -1))[0];
    const fetched = (fetches.get(item) ?? []).some(
      (f) =>
        !answered ||
        (reportAnswers(f.reportAt, answered.at) &&
          (f.dataAt === null || dataHolds(f.dataAt, answered.at))),
    );
    if (fetched) continue;
    if (options.now - Date.parse(publishedAt.get(item) ?? latest) < options.maxPendingMs) {
      pending += 1;
      continue;
    }
    const newest = (fetches.get(item) ?? []).at(-1);
    missing.add(
      `item ${item}: ReportReady received ${latest}${answered ? ` (request ${answered.requestId}, accepted ${answered.at})` : ''}, no fetch of it${newest ? `; the last fetch followed the report received ${newest.reportAt}, with data of ${newest.dataAt ?? '(given up)'}` : ''}`,
    );
  }
  return {
    name,
    holds: missing.count === 0,
    counts: { items: latestReady.size, pending, violations: missing.count },
    examples: missing.lines,
  };
}

/** Rule 5b. */
export function checkFetchedRequests(records: readonly LogRecord[]): Finding {
  const acceptedAt = new Map<string, string>();
  for (const r of records) {
    if (r.event?.type === 'RefreshAccepted') {
      acceptedAt.set(r.event.data.refresh_request_id, r.event.data.accepted_at);
    }
  }
  const wrong = examples();
  let named = 0;
  for (const r of records) {
    const e = r.event;
    if (e?.type !== 'ReportFetched') continue;
    for (const requestId of e.data.refresh_request_ids) {
      named += 1;
      const at = acceptedAt.get(requestId);
      if (at === undefined || dataHolds(e.data.last_successful_update_time, at)) continue;
      wrong.add(
        `fetch ${e.data.fetch_id} of item ${e.data.item_id} names request ${requestId} accepted ${at}, but its data is of ${e.data.last_successful_update_time}`,
      );
    }
  }
  return {
    name: 'no fetch names a request its data predates',
    holds: wrong.count === 0,
    counts: { requests_named: named, violations: wrong.count },
    examples: wrong.lines,
  };
}

/** An Item's last stored fetch, and what the sandbox serves now for its window. */
export interface StoredVersusServed {
  readonly itemId: string;
  readonly storedLastUpdate: string;
  readonly servedLastUpdate: string;
  /** transaction_id -> content, stored (not removed) and served. */
  readonly stored: ReadonlyMap<string, unknown>;
  readonly served: ReadonlyMap<string, unknown>;
}

/** Rule 6. */
export function checkStoredAgainstSandbox(items: readonly StoredVersusServed[]): Finding {
  const wrong = examples();
  let changedSince = 0;
  let compared = 0;
  for (const item of items) {
    if (Date.parse(item.storedLastUpdate) !== Date.parse(item.servedLastUpdate)) {
      changedSince += 1;
      continue;
    }
    compared += 1;
    const missing = [...item.served.keys()].filter((id) => !item.stored.has(id));
    const extra = [...item.stored.keys()].filter((id) => !item.served.has(id));
    const differing = [...item.served.keys()].filter(
      (id) =>
        item.stored.has(id) && canonical(item.stored.get(id)) !== canonical(item.served.get(id)),
    );
    if (missing.length + extra.length + differing.length > 0) {
      wrong.add(
        `item ${item.itemId}: ${missing.length} served but not stored, ${extra.length} stored but not served, ${differing.length} different`,
      );
    }
  }
  return {
    name: 'stored transactions equal what the sandbox serves',
    holds: wrong.count === 0,
    counts: { items: items.length, compared, changed_since: changedSince, violations: wrong.count },
    examples: wrong.lines,
  };
}

/** Rule 7: `compacted` is the topic folded by key (null: a tombstone), `table` the rows. */
export function checkChangelog(
  compacted: ReadonlyMap<string, string | null>,
  table: ReadonlyMap<string, string>,
  unpublishedItems: ReadonlySet<string>,
  itemOfKey: (key: string) => string | undefined,
): Finding {
  const wrong = examples();
  const skip = (key: string) => unpublishedItems.has(itemOfKey(key) ?? '');
  for (const [key, content] of table) {
    if (skip(key)) continue;
    const value = compacted.get(key);
    if (value === undefined || value === null) wrong.add(`${key}: stored, not on the changelog`);
    else if (value !== content) wrong.add(`${key}: the changelog's latest differs from the store`);
  }
  for (const [key, value] of compacted) {
    if (value !== null && !table.has(key) && !skip(key)) {
      wrong.add(`${key}: on the changelog, not stored (or removed without a tombstone)`);
    }
  }
  return {
    name: "the changelog's compacted view equals the stored transactions",
    holds: wrong.count === 0,
    counts: {
      stored: table.size,
      keys: compacted.size,
      items_left_for_later: unpublishedItems.size,
      violations: wrong.count,
    },
    examples: wrong.lines,
  };
}

/** JSON with keys sorted at every level: equal content, equal text (jsonb reorders keys). */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
            a < b ? -1 : a > b ? 1 : 0,
          ),
        )
      : v,
  );
}
