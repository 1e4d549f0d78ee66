import {
  createEvent,
  topicKeyForEvent,
  type CashflowEvent,
  type EventMetadata,
  type PlaidError,
  type ReportFetchedData,
} from '@cashflow/contracts';
import type { PositionedEvent } from '@cashflow/projection';
import fc from 'fast-check';
import { createHash } from 'node:crypto';

/**
 * Valid refresh histories, as the system would produce them, for property tests: each Item gets
 * a series of refreshes; each refresh is requested, then accepted or failed (or left waiting);
 * accepted ones may get a report, and a report may come twice (Plaid retried it). A report can
 * land on its topic later than it was received (another ingress replica was slower to publish),
 * so the report topic's order is not always the order of received_at. A ready report may be
 * fetched (ReportFetched naming the request, or ReportFetchFailed), and fetched again later
 * naming no request (`report fetch`); fetches of one Item can end out of their reports' order.
 */

export interface RefreshPlan {
  readonly gapS: number;
  readonly days: number | undefined;
  readonly outcome: 'accepted' | 'failed' | 'none';
  readonly acceptAfterS: number;
  readonly report: 'ready' | 'failed' | 'none';
  readonly reportAfterS: number;
  readonly reportTwice: boolean;
  /** How long after it was received each copy of the report lands on its topic. */
  readonly publishedAfterS: number;
  readonly failure: 'plaid' | 'worker';
  /** What the report fetcher made of a ready report. */
  readonly fetch: 'fetched' | 'failed' | 'none';
  /** Whole seconds, so that two fetches of an Item end at the same instant now and then. */
  readonly fetchAfterS: number;
  readonly fetchAgain: boolean;
  readonly transactions: number;
}

export const refreshPlan: fc.Arbitrary<RefreshPlan> = fc.record({
  gapS: fc.integer({ min: 1, max: 120 }),
  days: fc.option(fc.integer({ min: 1, max: 730 }), { nil: undefined }),
  outcome: fc.constantFrom('accepted', 'accepted', 'failed', 'none'),
  acceptAfterS: fc.integer({ min: 0, max: 30 }),
  report: fc.constantFrom('ready', 'ready', 'failed', 'none'),
  reportAfterS: fc.integer({ min: 2, max: 300 }),
  reportTwice: fc.boolean(),
  publishedAfterS: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 120 })),
  failure: fc.constantFrom('plaid', 'worker'),
  fetch: fc.constantFrom('fetched', 'fetched', 'failed', 'none'),
  fetchAfterS: fc.integer({ min: 0, max: 400 }),
  fetchAgain: fc.boolean(),
  transactions: fc.integer({ min: 0, max: 5000 }),
});

/** Plans for 1 to 3 Items, each with 1 to 6 refreshes. */
export const historyPlan = fc.array(fc.array(refreshPlan, { minLength: 1, maxLength: 6 }), {
  minLength: 1,
  maxLength: 3,
});

/** Plans for one Item with a long history: 40 to 60 refreshes. */
export const longHistoryPlan = fc
  .array(refreshPlan, { minLength: 40, maxLength: 60 })
  .map((refreshes) => [refreshes]);

const EPOCH = Date.parse('2026-11-24T09:00:00.000Z');
const iso = (seconds: number) => new Date(EPOCH + seconds * 1000).toISOString();

/**
 * The events of a history, per topic, in the order each topic would hold them (by time), with
 * offsets. All of an Item's events share partition 0 of their topic.
 */
export function historyEvents(
  plans: readonly (readonly RefreshPlan[])[],
  prefix = 'p',
): Map<string, PositionedEvent[]> {
  // `at`: when it happened (its time); `landed`: when it reached its topic, which orders it there.
  const timed: { at: number; landed?: number; event: CashflowEvent }[] = [];
  let fetches = 0;
  const fetchId = () => fetchUuid(`${prefix}-${fetches++}`);
  plans.forEach((refreshes, itemIndex) => {
    const itemId = `item-${prefix}-${itemIndex}`;
    let t = itemIndex * 7;
    refreshes.forEach((plan, n) => {
      t += plan.gapS;
      const requestId = `${prefix}-${itemIndex}-req-${n}`;
      const meta = (id: string, at: number): EventMetadata => ({
        id,
        source: 'urn:cashflow-refresh:test',
        time: iso(at),
        correlationId: requestId,
      });
      timed.push({
        at: t,
        event: createEvent(
          'RefreshRequested',
          { item_id: itemId, ...(plan.days ? { days_requested: plan.days } : {}) },
          meta(requestId, t),
        ),
      });
      const outcomeAt = t + plan.acceptAfterS;
      if (plan.outcome === 'failed') {
        timed.push({
          at: outcomeAt,
          event: createEvent(
            'RefreshFailed',
            {
              item_id: itemId,
              refresh_request_id: requestId,
              days_requested: plan.days ?? 365,
              error:
                plan.failure === 'plaid'
                  ? {
                      source: 'plaid',
                      error_type: 'ITEM_ERROR',
                      error_code: 'ITEM_LOGIN_REQUIRED',
                      error_message: 'the login details of this item have changed',
                      display_message: null,
                      plaid_request_id: `plaid-${requestId}`,
                      http_status: 400,
                    }
                  : {
                      source: 'worker',
                      error_code: 'PLAID_TIMEOUT',
                      error_message: 'Plaid did not answer in time',
                    },
              retryable: plan.failure === 'worker',
              attempts: 1,
              failed_at: iso(outcomeAt),
            },
            meta(`${requestId}-failed`, outcomeAt),
          ),
        });
      }
      if (plan.outcome !== 'accepted') return;
      timed.push({
        at: outcomeAt,
        event: createEvent(
          'RefreshAccepted',
          {
            item_id: itemId,
            refresh_request_id: requestId,
            plaid_request_id: `plaid-${requestId}`,
            days_requested: plan.days ?? 365,
            attempts: 1,
            accepted_at: iso(outcomeAt),
          },
          meta(`${requestId}-accepted`, outcomeAt),
        ),
      });
      if (plan.report === 'none') return;
      const copies = plan.reportTwice ? 2 : 1;
      for (let copy = 0; copy < copies; copy++) {
        const at = outcomeAt + plan.reportAfterS + copy * 30;
        timed.push({
          at,
          landed: at + plan.publishedAfterS,
          event: report(itemId, `${requestId}-report-${copy}`, at, plan.report),
        });
      }
      if (plan.report !== 'ready' || plan.fetch === 'none') return;
      const reportAt = outcomeAt + plan.reportAfterS;
      const follows = {
        item_id: itemId,
        report_event_id: `${requestId}-report-0`,
        report_received_at: iso(reportAt),
        days_requested: plan.days ?? 365,
      };
      const endedAt = reportAt + plan.fetchAfterS;
      timed.push({
        at: endedAt,
        event:
          plan.fetch === 'fetched'
            ? fetched(
                { ...follows, fetch_id: fetchId(), refresh_request_ids: [requestId] },
                endedAt,
                plan.transactions,
              )
            : fetchFailed(
                { ...follows, fetch_id: fetchId(), refresh_request_ids: [requestId] },
                endedAt,
              ),
      });
      if (!plan.fetchAgain) return;
      // Fetched again on request (`report fetch`): it brings no request's data.
      const againAt = endedAt + (plan.fetchAfterS % 90);
      timed.push({
        at: againAt,
        event: fetched(
          { ...follows, fetch_id: fetchId(), refresh_request_ids: [] },
          againAt,
          plan.transactions + 1,
        ),
      });
    });
  });
  const topics = new Map<string, PositionedEvent[]>();
  timed
    .sort((a, b) => (a.landed ?? a.at) - (b.landed ?? b.at))
    .forEach(({ event }) => {
      const topic = topicKeyForEvent(event.type);
      const list = topics.get(topic) ?? [];
      list.push({ event, position: { topic, partition: 0, offset: String(list.length) } });
      topics.set(topic, list);
    });
  return topics;
}

/** A fetch id (a UUID) made from `seed`, the same for the same seed. */
export function fetchUuid(seed: string): string {
  const hex = createHash('sha256').update(seed).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

type FetchFollows = Pick<
  ReportFetchedData,
  'item_id' | 'fetch_id' | 'report_event_id' | 'report_received_at' | 'days_requested'
> & { readonly refresh_request_ids: string[] };

function fetched(follows: FetchFollows, at: number, transactions: number) {
  const fetchedAt = iso(at);
  return createEvent(
    'ReportFetched',
    {
      ...follows,
      window_start: '2025-11-25',
      last_successful_update_time: iso(at - 5),
      pages: 1 + Math.floor(transactions / 500),
      restarts: 0,
      accounts: 2,
      transactions,
      added: transactions,
      modified: 0,
      removed: 0,
      oldest_transaction_date: transactions ? '2025-11-25' : null,
      newest_transaction_date: transactions ? fetchedAt.slice(0, 10) : null,
      insights: null,
      changelog: true,
      fetched_at: fetchedAt,
      duration_ms: 1200,
    },
    { id: follows.fetch_id, source: 'urn:cashflow-refresh:test', time: fetchedAt },
  );
}

function fetchFailed(follows: FetchFollows, at: number) {
  const failedAt = iso(at);
  return createEvent(
    'ReportFetchFailed',
    {
      ...follows,
      error: {
        source: 'plaid',
        error_type: 'ITEM_ERROR',
        error_code: 'ITEM_LOGIN_REQUIRED',
        error_message: 'the login details of this item have changed',
        display_message: null,
        plaid_request_id: `plaid-${follows.fetch_id}`,
        http_status: 400,
      },
      retryable: false,
      attempts: 1,
      failed_at: failedAt,
    },
    { id: follows.fetch_id, source: 'urn:cashflow-refresh:test', time: failedAt },
  );
}

function report(itemId: string, id: string, at: number, kind: 'ready' | 'failed') {
  const error: PlaidError | null =
    kind === 'failed'
      ? {
          error_type: 'ITEM_ERROR',
          error_code: 'PRODUCT_NOT_READY',
          error_message: 'the requested product is not yet ready',
          display_message: null,
        }
      : null;
  const delivery = {
    item_id: itemId,
    webhook_type: 'CASHFLOW_REPORT',
    webhook_code: 'CASHFLOW_REPORT_READY',
    environment: 'sandbox',
    received_at: iso(at),
    delivery_id: `delivery-${id}`,
    webhook: {
      webhook_type: 'CASHFLOW_REPORT',
      webhook_code: 'CASHFLOW_REPORT_READY',
      item_id: itemId,
      error,
    },
  };
  const meta = { id, source: 'urn:cashflow-refresh:test', time: iso(at) };
  return error
    ? createEvent('ReportFailed', { ...delivery, error }, meta)
    : createEvent('ReportReady', { ...delivery, found_by: 'webhook' }, meta);
}

/**
 * One way Kafka could hand the topics to independent consumers: `readFirst` (a topic key) is
 * read to its end before anything else, as a catch-up or a rebuild can read one topic far
 * ahead of the others; then `choices` picks which topic goes next (order kept within each), and
 * `duplicates` re-delivers some events later on.
 */
export function interleave(
  topics: Map<string, PositionedEvent[]>,
  choices: readonly number[],
  duplicates: readonly (readonly [number, number])[],
  readFirst?: string,
): PositionedEvent[] {
  const out: PositionedEvent[] = [];
  for (const [topic, events] of topics) if (topic === readFirst) out.push(...events);
  const queues = [...topics]
    .filter(([topic]) => topic !== readFirst)
    .map(([, events]) => [...events]);
  let c = 0;
  while (queues.some((q) => q.length > 0)) {
    const open = queues.filter((q) => q.length > 0);
    const queue = open[(choices[c++ % Math.max(choices.length, 1)] ?? 0) % open.length]!;
    out.push(queue.shift()!);
  }
  for (const [from, delay] of duplicates) {
    if (out.length === 0) break;
    const i = from % out.length;
    out.splice(Math.min(out.length, i + 1 + delay), 0, out[i]!);
  }
  return out;
}

/** The canonical order: each topic in full, one after the other. */
export function topicByTopic(topics: Map<string, PositionedEvent[]>): PositionedEvent[] {
  return [...topics.values()].flat();
}

/** Every event in the order it happened (its ce_time), as if one consumer saw them live. */
export function inTimeOrder(topics: Map<string, PositionedEvent[]>): PositionedEvent[] {
  const at = (e: PositionedEvent) => Date.parse(e.event.metadata.time);
  return [...topics.values()].flat().sort((a, b) => at(a) - at(b));
}

export const interleaving = fc.record({
  choices: fc.array(fc.nat(), { minLength: 1, maxLength: 200 }),
  duplicates: fc.array(fc.tuple(fc.nat(), fc.nat({ max: 20 })), { maxLength: 8 }),
  readFirst: fc.option(
    fc.constantFrom('refreshRequested', 'refreshOutcomes', 'reportOutcomes', 'reportFetches'),
    { nil: undefined },
  ),
});

/** Builders for one Item's events, with readable ids; times are ISO strings. */
export function eventsFor(itemId: string) {
  const meta = (id: string, time = '2026-11-24T10:00:00.000Z'): EventMetadata => ({
    id,
    source: 'urn:cashflow-refresh:test',
    time,
  });
  const delivery = (receivedAt: string, id: string) => ({
    item_id: itemId,
    webhook_type: 'CASHFLOW_REPORT',
    webhook_code: 'CASHFLOW_REPORT_READY',
    environment: 'sandbox',
    received_at: receivedAt,
    delivery_id: `delivery-${id}`,
    webhook: { item_id: itemId },
  });
  return {
    requested: (id: string, days?: number, time?: string) =>
      createEvent(
        'RefreshRequested',
        { item_id: itemId, ...(days ? { days_requested: days } : {}), requested_by: 'tests' },
        meta(id, time),
      ),
    accepted: (requestId: string, acceptedAt: string, coalescedInto?: string) =>
      createEvent(
        'RefreshAccepted',
        {
          item_id: itemId,
          refresh_request_id: requestId,
          plaid_request_id: `plaid-${requestId}`,
          days_requested: 365,
          attempts: 1,
          accepted_at: acceptedAt,
          ...(coalescedInto ? { coalesced_into: coalescedInto } : {}),
        },
        meta(`${requestId}-accepted`, acceptedAt),
      ),
    failed: (requestId: string, failedAt: string, code = 'ITEM_LOGIN_REQUIRED') =>
      createEvent(
        'RefreshFailed',
        {
          item_id: itemId,
          refresh_request_id: requestId,
          days_requested: 365,
          error: {
            source: 'plaid',
            error_type: 'ITEM_ERROR',
            error_code: code,
            error_message: 'the login details of this item have changed',
            display_message: null,
            plaid_request_id: `plaid-${requestId}`,
            http_status: 400,
          },
          retryable: false,
          attempts: 1,
          failed_at: failedAt,
        },
        meta(`${requestId}-failed`, failedAt),
      ),
    ready: (id: string, receivedAt: string) =>
      createEvent(
        'ReportReady',
        { ...delivery(receivedAt, id), found_by: 'webhook' },
        meta(id, receivedAt),
      ),
    /**
     * A ReportReady the report fetcher found by polling, for `requestIds`: its event id is the
     * poll id, a UUID made from `seed`.
     */
    readyByPolling: (seed: string, receivedAt: string, requestIds: string[]) => {
      const id = fetchUuid(`poll-${seed}`);
      return createEvent(
        'ReportReady',
        {
          ...delivery(receivedAt, id),
          environment: null,
          delivery_id: `poll:${id}`,
          webhook: {},
          found_by: 'polling',
          poll: {
            poll_id: id,
            plaid_request_id: `plaid-poll-${id}`,
            last_successful_update_time: receivedAt,
            refresh_request_ids: requestIds,
            polled_at: receivedAt,
          },
        },
        { ...meta(id, receivedAt), source: 'urn:cashflow-refresh:report-fetcher' },
      );
    },
    /** A ReportOverdue: the fetcher gave up waiting for the report of `requestIds`. */
    overdue: (id: string, overdueAt: string, requestIds: string[], acceptedAt = overdueAt) =>
      createEvent(
        'ReportOverdue',
        {
          item_id: itemId,
          refresh_request_ids: requestIds,
          accepted_at: acceptedAt,
          polls: 4,
          last_successful_update_time: null,
          last_error: null,
          overdue_at: overdueAt,
        },
        { ...meta(id, overdueAt), source: 'urn:cashflow-refresh:report-fetcher' },
      ),
    reportFailed: (id: string, receivedAt: string, code = 'ITEM_LOGIN_REQUIRED') =>
      createEvent(
        'ReportFailed',
        {
          ...delivery(receivedAt, id),
          error: { error_type: 'ITEM_ERROR', error_code: code, error_message: 'login required' },
        },
        meta(id, receivedAt),
      ),
    /**
     * The worker's `sequence`-th health change, ItemNeedsAttention: needs_user_action for
     * `reason`, changed (and decided) at `changedAt`.
     */
    needsAttention: (id: string, changedAt: string, reason = 'ITEM_LOGIN_REQUIRED', sequence = 1) =>
      createEvent(
        'ItemNeedsAttention',
        {
          item_id: itemId,
          sequence,
          decided_at: changedAt,
          health: { status: 'needs_user_action', reason, consent_expires_at: null },
          previous: { status: 'healthy', reason: null, consent_expires_at: null },
          cause: { kind: 'item_webhook', code: reason, event_id: `webhook-${id}` },
          changed_at: changedAt,
        },
        { ...meta(id, changedAt), source: 'urn:cashflow-refresh:refresh-worker' },
      ),
    restored: (id: string, changedAt: string, sequence = 2) =>
      createEvent(
        'ItemHealthRestored',
        {
          item_id: itemId,
          sequence,
          decided_at: changedAt,
          previous: {
            status: 'needs_user_action',
            reason: 'ITEM_LOGIN_REQUIRED',
            consent_expires_at: null,
          },
          cause: { kind: 'item_webhook', code: 'LOGIN_REPAIRED', event_id: `webhook-${id}` },
          changed_at: changedAt,
        },
        { ...meta(id, changedAt), source: 'urn:cashflow-refresh:refresh-worker' },
      ),
    otherWebhook: (id: string, receivedAt: string) =>
      createEvent(
        'PlaidWebhookReceived',
        { ...delivery(receivedAt, id), webhook_type: 'ITEM', webhook_code: 'ERROR' },
        meta(id, receivedAt),
      ),
    /**
     * A ReportFetched of the report `reportId` (received at `reportReceivedAt`), bringing the
     * data of `requestIds`; the fetch id is a UUID made from `seed`.
     */
    fetched: (
      seed: string,
      fetchedAt: string,
      report: { readonly id: string; readonly receivedAt: string },
      requestIds: string[] = [],
      transactions = 42,
    ) => {
      const at = (Date.parse(fetchedAt) - EPOCH) / 1000;
      return fetched(
        {
          item_id: itemId,
          fetch_id: fetchUuid(seed),
          report_event_id: report.id,
          report_received_at: report.receivedAt,
          days_requested: 365,
          refresh_request_ids: requestIds,
        },
        at,
        transactions,
      );
    },
    /** A ReportFetchFailed of the report `reportId` (ITEM_LOGIN_REQUIRED from Plaid). */
    fetchFailed: (
      seed: string,
      failedAt: string,
      report: { readonly id: string; readonly receivedAt: string },
      requestIds: string[] = [],
    ) =>
      fetchFailed(
        {
          item_id: itemId,
          fetch_id: fetchUuid(seed),
          report_event_id: report.id,
          report_received_at: report.receivedAt,
          days_requested: 365,
          refresh_request_ids: requestIds,
        },
        (Date.parse(failedAt) - EPOCH) / 1000,
      ),
  };
}
