/**
 * The refresh projection's rules: how each event changes one Item's refresh state. Pure: no I/O,
 * no clock. The projector (projection-store.ts) loads what a batch needs of an Item's state,
 * folds the batch's events with `evolve` and writes the result; `check`, the tests and the
 * bench fold the same events in memory (fold.ts).
 *
 * ## The rules
 *
 * Events of one Item arrive over five topics that are consumed independently, so the projector
 * sees them in any interleaving of the topics (order kept within each topic), sometimes twice.
 * The final state depends only on which events exist, not on that interleaving:
 *
 * 1. **Requests are ordered by their position** in the refresh-requested topic (all of an Item's
 *    requests share one partition). The Item's *latest request* is the one with the highest
 *    offset. An outcome can arrive before its RefreshRequested; that request ranks above every
 *    request already seen (the requested topic is read in order, so anything not yet read from
 *    it is newer), ordered among other unseen ones by outcome time.
 * 2. **A request's outcome**: RefreshAccepted moves it from `requested` to `accepted`,
 *    RefreshFailed to `failed`. If both arrive for one request, accepted wins (the worker
 *    answers once; this keeps the result independent of order).
 * 3. **Reports belong to refreshes by time** (report-answers.ts). Plaid's webhook names no
 *    request. An accepted request is completed by the earliest report (ReportReady or
 *    ReportFailed, by received_at) of its Item received no earlier than
 *    REPORT_CLOCK_TOLERANCE_MS before its acceptance: `ready`, or `report_failed` with the
 *    webhook's error. A report can be read long before the RefreshAccepted it answers (the
 *    webhook can beat the worker's publish, and a catch-up or a rebuild reads the report topic
 *    far ahead of the outcomes), so every report is kept (`reports`; the store keeps them in
 *    `item_reports` and loads only the earliest one answering each acceptance in a batch).
 *    Which reports could be forgotten depends on acceptances not yet read, whose times nothing
 *    bounds, so none is: the Item row stays small, the reports table grows like the event copy.
 *    Reports of one Item can land on Kafka out of received order (two ingress replicas publish
 *    independently), so a report received earlier than the one that completed a request, and
 *    answering it too, takes the request over.
 * 4. **A repeated report is a no-op**: a report received after the one that completed a request
 *    changes nothing but the list of reports.
 * 5. **A late outcome for an older request** (e.g. a RefreshFailed that arrives after a newer
 *    request is ready) updates that request's row only; the Item follows its latest request.
 * 6. **The Item's status** is its latest request's: requested -> `requested`, accepted ->
 *    `refreshing`, ready -> `ready`, failed or report_failed -> `failed`. An Item known only from
 *    reports (refreshed outside this system) takes its status from the newest report (a failure
 *    winning a tie), `ready_at` from the newest ReportReady and `failed_at` from the newest
 *    ReportFailed.
 * 7. **The Item's last error** is the newest failure of any of its requests or reports, by the
 *    time it happened, so a success does not hide the last thing that went wrong.
 * 8. **refreshes** counts the Item's refreshes whose data became ready: requests that made their
 *    own Plaid call (not coalesced into another's) and reached `ready`.
 * 9. PlaidWebhookReceived (other webhook codes) is kept in the event copy only.
 * 10. **A fetch is also its report.** ReportFetched and ReportFetchFailed (the report fetcher's,
 *    on a fourth topic) follow the ReportReady whose id and received_at they carry, so each is
 *    applied as that report too (rules 3 and 4: the same report applied twice changes nothing).
 *    A fetch read before its report then finds the Item's row as the report would leave it.
 * 11. **The Item's last fetch** is its newest ReportFetched by fetched_at (then fetch id):
 *    `lastFetch` holds its fetched_at, last_successful_update_time and transaction count. Its
 *    newest ReportFetchFailed by failed_at (then fetch id) is `lastFetchFailure`, kept after a
 *    later success as rule 7 keeps errors; compare the two times to see which came last. Fetch
 *    failures are not refresh errors: they leave `status` and `lastError` alone.
 * 12. **A request is fetched** when a ReportFetched names it in refresh_request_ids: its
 *    `fetchedAt` is the earliest such fetched_at (when its data first arrived). A request named
 *    before its RefreshRequested or outcome is read is created, as an early outcome creates one.
 * 13. **A report that never came.** ReportOverdue (the report fetcher polled Plaid until it gave
 *    up) sets `overdueAt` on the requests it names, the earliest if named twice; an accepted
 *    request no report completed is then `overdue` (the Item's status too, when it is the
 *    latest). A report that answers it still completes it (a webhook later than the fetcher
 *    waited), whichever of the two is read first: the request ends `ready` or `report_failed`
 *    with `overdueAt` kept. A ReportReady found by polling is a report like any other; its
 *    `foundBy` is kept with it.
 * 14. **The Item's health** is the refresh worker's latest health change (ItemNeedsAttention or
 *    ItemHealthRestored, on a sixth topic): the one with the highest `sequence` (the worker
 *    numbers each Item's changes), whatever order they are read in. `health` holds its status,
 *    reason, consent expiry, changed_at and sequence. An Item never named by one is healthy (`health` null). It
 *    changes nothing else: a refresh refused for the Item's health is an ordinary RefreshFailed.
 *
 * `lastEvent` records the last event applied and so depends on arrival order; it is the only
 * field that does.
 */
import type {
  CashflowEvent,
  EventOfType,
  FoundBy,
  ItemHealthStatus,
  RefreshFailure,
} from '@cashflow/contracts';
import {
  answeringReport,
  receivedBefore,
  reportAnswers,
  type ReceivedReport,
} from './report-answers';

export type RequestStatus =
  'requested' | 'accepted' | 'failed' | 'ready' | 'report_failed' | 'overdue';
export type ItemStatus = 'requested' | 'refreshing' | 'ready' | 'failed' | 'overdue';
export const ITEM_STATUSES: readonly ItemStatus[] = [
  'requested',
  'refreshing',
  'ready',
  'failed',
  'overdue',
];

/** Where an event was read: topic, partition and offset (a decimal string, as Kafka gives it). */
export interface Position {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export interface ErrorFacts {
  /** `plaid`, `worker` (RefreshFailed) or `webhook` (ReportFailed). */
  readonly source: 'plaid' | 'worker' | 'webhook';
  readonly type: string | null;
  readonly code: string;
  readonly message: string;
  readonly at: string;
  /** Tie-break for failures at the same instant: the event id. */
  readonly eventId: string;
}

export interface RequestState {
  readonly requestId: string;
  readonly itemId: string;
  /** Offset of the RefreshRequested in its partition; null until it is applied. */
  readonly requestOffset: string | null;
  readonly requestPartition: number | null;
  readonly daysRequested: number | null;
  readonly requestedBy: string | null;
  readonly requestedAt: string | null;
  readonly status: RequestStatus;
  readonly acceptedAt: string | null;
  readonly readyAt: string | null;
  readonly failedAt: string | null;
  readonly plaidRequestId: string | null;
  readonly attempts: number | null;
  readonly coalescedInto: string | null;
  readonly retryable: boolean | null;
  readonly error: ErrorFacts | null;
  /** The ReportReady / ReportFailed event that completed it. */
  readonly reportEventId: string | null;
  /** Rule 12: when the first ReportFetched naming it stored its data. */
  readonly fetchedAt: string | null;
  /** Rule 13: when the report fetcher gave up waiting for its report. */
  readonly overdueAt: string | null;
}

export interface ReportFacts extends ReceivedReport {
  readonly itemId: string;
  readonly kind: 'ready' | 'failed';
  readonly error: ErrorFacts | null;
  /** Rule 13: a ReportReady's found_by (webhook for every ReportFailed). */
  readonly foundBy: FoundBy;
}

/** Rule 11: the Item's newest ReportFetched. */
export interface FetchFacts {
  readonly fetchId: string;
  readonly fetchedAt: string;
  readonly lastSuccessfulUpdateTime: string;
  /** Transactions Plaid returned for the fetch's window. */
  readonly transactionCount: number;
}

/** Rule 11: the Item's newest ReportFetchFailed. */
export interface FetchFailureFacts {
  readonly fetchId: string;
  readonly failedAt: string;
  readonly code: string;
  readonly message: string;
}

/** Rule 14: the Item's newest health change. */
export interface HealthFacts {
  readonly status: ItemHealthStatus;
  readonly reason: string | null;
  readonly consentExpiresAt: string | null;
  readonly changedAt: string;
  readonly sequence: number;
  readonly eventId: string;
}

export interface ItemState {
  readonly itemId: string;
  readonly status: ItemStatus | null;
  readonly latestRequestId: string | null;
  readonly daysRequested: number | null;
  readonly requestedAt: string | null;
  readonly acceptedAt: string | null;
  readonly readyAt: string | null;
  readonly failedAt: string | null;
  readonly plaidRequestId: string | null;
  readonly attempts: number | null;
  readonly lastError: ErrorFacts | null;
  readonly refreshes: number;
  readonly lastFetch: FetchFacts | null;
  readonly lastFetchFailure: FetchFailureFacts | null;
  /** Rule 14: null while no health change named the Item (healthy). */
  readonly health: HealthFacts | null;
  readonly lastEvent: (Position & { readonly eventId: string }) | null;
}

/**
 * One Item's slice of the projection: its row, and the requests and reports `evolve` may need
 * (in memory all of them; in the store those its batch needs, see requestIdsNeeded and
 * acceptancesIn), by id.
 */
export interface ItemProjection {
  readonly item: ItemState;
  readonly requests: ReadonlyMap<string, RequestState>;
  readonly reports: ReadonlyMap<string, ReportFacts>;
}

export function initialItem(itemId: string): ItemProjection {
  return {
    item: {
      itemId,
      status: null,
      latestRequestId: null,
      daysRequested: null,
      requestedAt: null,
      acceptedAt: null,
      readyAt: null,
      failedAt: null,
      plaidRequestId: null,
      attempts: null,
      lastError: null,
      refreshes: 0,
      lastFetch: null,
      lastFetchFailure: null,
      health: null,
      lastEvent: null,
    },
    requests: new Map(),
    reports: new Map(),
  };
}

/** Events that change refresh state (PlaidWebhookReceived does not). */
export type RefreshEvent = Exclude<CashflowEvent, { type: 'PlaidWebhookReceived' }>;

export function changesRefreshState(event: CashflowEvent): event is RefreshEvent {
  return event.type !== 'PlaidWebhookReceived';
}

type FetchEvent = EventOfType<'ReportFetched'> | EventOfType<'ReportFetchFailed'>;

/**
 * Request ids whose rows must be loaded before `events` are applied to an Item: the ids the
 * events name (fetches included, rule 12) and the Item's latest request. The Item's `accepted`
 * requests are needed too
 * (a report completes them), and those a report in `events` takes over (reportsReceivedIn);
 * the store loads those by status and time.
 */
export function requestIdsNeeded(item: ItemState | undefined, events: readonly CashflowEvent[]) {
  const ids = new Set<string>();
  if (item?.latestRequestId) ids.add(item.latestRequestId);
  for (const event of events) {
    if (event.type === 'RefreshRequested') ids.add(event.metadata.id);
    if (event.type === 'RefreshAccepted' || event.type === 'RefreshFailed') {
      ids.add(event.data.refresh_request_id);
    }
    if (event.type === 'ReportFetched' || event.type === 'ReportOverdue') {
      for (const id of event.data.refresh_request_ids) ids.add(id);
    }
  }
  return ids;
}

/**
 * The acceptance times in `events`: the store loads, for each, the earliest report of the Item
 * that answers it (rule 3), so `evolve` finds it among the slice's reports.
 */
export function acceptancesIn(events: readonly CashflowEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'RefreshAccepted' ? [e.data.accepted_at] : []));
}

/**
 * When the reports in `events` were received (a fetch's report too, rule 10): the store loads
 * the Item's requests completed by a report received later that one of these answers (rule 3),
 * so `evolve` can take them over.
 */
export function reportsReceivedIn(events: readonly CashflowEvent[]): string[] {
  return events.flatMap((e) => {
    if (e.type === 'ReportReady' || e.type === 'ReportFailed') return [e.data.received_at];
    if (e.type === 'ReportFetched' || e.type === 'ReportFetchFailed') {
      return [e.data.report_received_at];
    }
    return [];
  });
}

/** Applies one event to an Item's slice. Events of other Items must not be passed. */
export function evolve(
  state: ItemProjection,
  event: CashflowEvent,
  position: Position,
): ItemProjection {
  let next: ItemProjection;
  switch (event.type) {
    case 'RefreshRequested':
      next = onRequested(state, event, position);
      break;
    case 'RefreshAccepted':
      next = onAccepted(state, event);
      break;
    case 'RefreshFailed':
      next = onRefreshFailed(state, event);
      break;
    case 'ReportReady':
    case 'ReportFailed':
      next = onReport(state, reportFacts(event));
      break;
    case 'ReportFetched':
      next = onFetched(onReport(state, fetchedReport(state, event)), event);
      break;
    case 'ReportFetchFailed':
      next = onFetchFailed(onReport(state, fetchedReport(state, event)), event);
      break;
    case 'ReportOverdue':
      next = onOverdue(state, event);
      break;
    case 'ItemNeedsAttention':
    case 'ItemHealthRestored':
      next = onHealth(state, event);
      break;
    case 'PlaidWebhookReceived':
      return state;
    default:
      return assertNever(event);
  }
  return {
    requests: next.requests,
    reports: next.reports,
    item: { ...summarise(next), lastEvent: { ...position, eventId: event.metadata.id } },
  };
}

function onRequested(
  state: ItemProjection,
  event: EventOfType<'RefreshRequested'>,
  position: Position,
): ItemProjection {
  const id = event.metadata.id;
  const existing = state.requests.get(id) ?? emptyRequest(id, event.data.item_id);
  // The same event published twice keeps its first position.
  if (existing.requestOffset !== null && !isBefore(position, existing)) return state;
  const request: RequestState = {
    ...existing,
    requestOffset: position.offset,
    requestPartition: position.partition,
    daysRequested: existing.daysRequested ?? event.data.days_requested ?? null,
    requestedBy: event.data.requested_by ?? null,
    requestedAt: event.metadata.time,
  };
  return withRequest(state, request);
}

function onAccepted(state: ItemProjection, event: EventOfType<'RefreshAccepted'>): ItemProjection {
  const data = event.data;
  const existing =
    state.requests.get(data.refresh_request_id) ??
    emptyRequest(data.refresh_request_id, data.item_id);
  if (existing.status !== 'requested' && existing.status !== 'failed') return state;
  const accepted: RequestState = {
    ...existing,
    status: 'accepted',
    acceptedAt: data.accepted_at,
    failedAt: null,
    error: null,
    retryable: null,
    daysRequested: data.days_requested,
    plaidRequestId: data.plaid_request_id,
    attempts: data.attempts,
    coalescedInto: data.coalesced_into ?? null,
  };
  // The earliest report received after the acceptance completes it (rule 3); without one, a
  // ReportOverdue read earlier makes it overdue (rule 13).
  const report = answeringReport(state.reports.values(), data.accepted_at);
  const request = report ? complete(accepted, report) : waiting(accepted);
  return countRefreshes(withRequest(state, request), existing, request);
}

function onRefreshFailed(
  state: ItemProjection,
  event: EventOfType<'RefreshFailed'>,
): ItemProjection {
  const data = event.data;
  const existing =
    state.requests.get(data.refresh_request_id) ??
    emptyRequest(data.refresh_request_id, data.item_id);
  if (existing.status !== 'requested') return state;
  const request: RequestState = {
    ...existing,
    status: 'failed',
    failedAt: data.failed_at,
    // The outcome's days win, as for RefreshAccepted, whichever of the two arrives first.
    daysRequested: data.days_requested,
    attempts: data.attempts,
    coalescedInto: data.coalesced_into ?? null,
    retryable: data.retryable,
    plaidRequestId: data.error.source === 'plaid' ? data.error.plaid_request_id : null,
    error: refreshError(data.error, data.failed_at, event.metadata.id),
  };
  return withRequest(state, request);
}

function onReport(state: ItemProjection, report: ReportFacts): ItemProjection {
  const reports = new Map(state.reports);
  // Copies of one report (one id) can differ in when they were received: one webhook delivery
  // taken by two ingress replicas. The earliest-received copy is the report (rules 3 and 4), so
  // the result does not depend on which copy is read first.
  const known = state.reports.get(report.eventId);
  if (!known || !receivedBefore(known, report)) reports.set(report.eventId, report);
  const item = state.item;
  let next: ItemProjection = {
    ...state,
    reports,
    item: {
      ...item,
      // Rule 7, and rule 6 for an Item known only from reports (summarise keeps these then).
      lastError:
        report.error && newerError(report.error, item.lastError) ? report.error : item.lastError,
      readyAt: report.kind === 'ready' ? later(item.readyAt, report.receivedAt) : item.readyAt,
      failedAt: report.kind === 'failed' ? later(item.failedAt, report.receivedAt) : item.failedAt,
    },
  };
  for (const request of state.requests.values()) {
    if (answersBetter(report, request)) {
      const done = complete(request, report);
      next = countRefreshes(withRequest(next, done), request, done);
    }
  }
  return next;
}

/**
 * Rule 10: the ReportReady a fetch follows, as far as the fetch tells it. A report already
 * known keeps its own facts, so the result does not depend on which of the two came first.
 */
function fetchedReport(state: ItemProjection, event: FetchEvent): ReportFacts {
  const known = state.reports.get(event.data.report_event_id);
  if (known) return known;
  return {
    eventId: event.data.report_event_id,
    itemId: event.data.item_id,
    receivedAt: event.data.report_received_at,
    kind: 'ready',
    error: null,
    // A fetch does not say how its report was found; the report itself, once read, does.
    foundBy: 'webhook',
  };
}

/** Rules 11 and 12: the Item's newest fetch, and the requests whose data it brought. */
function onFetched(state: ItemProjection, event: EventOfType<'ReportFetched'>): ItemProjection {
  const data = event.data;
  const fetch: FetchFacts = {
    fetchId: data.fetch_id,
    fetchedAt: data.fetched_at,
    lastSuccessfulUpdateTime: data.last_successful_update_time,
    transactionCount: data.transactions,
  };
  const current = state.item.lastFetch;
  let next: ItemProjection =
    current && !newer(fetch.fetchedAt, fetch.fetchId, current.fetchedAt, current.fetchId)
      ? state
      : { ...state, item: { ...state.item, lastFetch: fetch } };
  for (const requestId of data.refresh_request_ids) {
    const existing = next.requests.get(requestId) ?? emptyRequest(requestId, data.item_id);
    if (existing.fetchedAt !== null && !isEarlier(data.fetched_at, existing.fetchedAt)) continue;
    next = withRequest(next, { ...existing, fetchedAt: data.fetched_at });
  }
  return next;
}

/** Rule 13: the requests whose report never came. */
function onOverdue(state: ItemProjection, event: EventOfType<'ReportOverdue'>): ItemProjection {
  const data = event.data;
  let next = state;
  for (const requestId of data.refresh_request_ids) {
    const existing = next.requests.get(requestId) ?? emptyRequest(requestId, data.item_id);
    if (existing.overdueAt !== null && !isEarlier(data.overdue_at, existing.overdueAt)) continue;
    next = withRequest(next, waiting({ ...existing, overdueAt: data.overdue_at }));
  }
  return next;
}

/** An accepted request no report completed: overdue once the fetcher gave up on it (rule 13). */
function waiting(request: RequestState): RequestState {
  return request.status === 'accepted' && request.overdueAt !== null
    ? { ...request, status: 'overdue' }
    : request;
}

/** Rule 14: the Item's newest health change. */
function onHealth(
  state: ItemProjection,
  event: EventOfType<'ItemNeedsAttention'> | EventOfType<'ItemHealthRestored'>,
): ItemProjection {
  const data = event.data;
  const now = event.type === 'ItemNeedsAttention' ? event.data.health : null;
  const health: HealthFacts = {
    status: now?.status ?? 'healthy',
    reason: now?.reason ?? null,
    consentExpiresAt: now?.consent_expires_at ?? null,
    changedAt: data.changed_at,
    sequence: data.sequence,
    eventId: event.metadata.id,
  };
  const current = state.item.health;
  if (
    current &&
    (health.sequence < current.sequence ||
      (health.sequence === current.sequence && health.eventId <= current.eventId))
  ) {
    return state;
  }
  return { ...state, item: { ...state.item, health } };
}

/** Rule 11: the Item's newest fetch failure. */
function onFetchFailed(
  state: ItemProjection,
  event: EventOfType<'ReportFetchFailed'>,
): ItemProjection {
  const data = event.data;
  const failure: FetchFailureFacts = {
    fetchId: data.fetch_id,
    failedAt: data.failed_at,
    code: data.error.error_code,
    message: data.error.error_message,
  };
  const current = state.item.lastFetchFailure;
  if (current && !newer(failure.failedAt, failure.fetchId, current.failedAt, current.fetchId)) {
    return state;
  }
  return { ...state, item: { ...state.item, lastFetchFailure: failure } };
}

/** Is (at, id) after (currentAt, currentId): by time, then id? */
function newer(at: string, id: string, currentAt: string, currentId: string): boolean {
  const diff = Date.parse(at) - Date.parse(currentAt);
  return diff !== 0 ? diff > 0 : id > currentId;
}

function isEarlier(candidate: string, current: string): boolean {
  return Date.parse(candidate) < Date.parse(current);
}

/** Rule 3: does `report` complete `request`, first or instead of a later-received report? */
function answersBetter(report: ReportFacts, request: RequestState): boolean {
  if (request.acceptedAt === null || !reportAnswers(report.receivedAt, request.acceptedAt)) {
    return false;
  }
  const by = completedBy(request);
  if (by) return receivedBefore(report, by);
  return request.status === 'accepted' || request.status === 'overdue';
}

/** The report that completed a request, as far as matching goes; null if none did. */
export function completedBy(request: RequestState): ReceivedReport | null {
  const receivedAt = request.status === 'ready' ? request.readyAt : request.failedAt;
  if (request.reportEventId === null || receivedAt === null) return null;
  return { eventId: request.reportEventId, receivedAt };
}

/** The request as `report` completes it, whatever completed it before. */
function complete(request: RequestState, report: ReportFacts): RequestState {
  return report.kind === 'ready'
    ? {
        ...request,
        status: 'ready',
        readyAt: report.receivedAt,
        failedAt: null,
        error: null,
        reportEventId: report.eventId,
      }
    : {
        ...request,
        status: 'report_failed',
        readyAt: null,
        failedAt: report.receivedAt,
        error: report.error,
        reportEventId: report.eventId,
      };
}

/** Rule 8: a request of its own becoming ready counts one refresh; one no longer ready, one less. */
function countRefreshes(state: ItemProjection, before: RequestState, after: RequestState) {
  if (after.coalescedInto !== null) return state;
  const change = Number(after.status === 'ready') - Number(before.status === 'ready');
  if (change === 0) return state;
  return { ...state, item: { ...state.item, refreshes: state.item.refreshes + change } };
}

/** Recomputes the Item's summary fields from its latest request and reports (rules 1, 6, 7). */
function summarise(state: ItemProjection): ItemState {
  const item = state.item;
  let latest = item.latestRequestId ? state.requests.get(item.latestRequestId) : undefined;
  let lastError = item.lastError;
  for (const request of state.requests.values()) {
    if (!latest || ranksAbove(request, latest)) latest = request;
    if (request.error && newerError(request.error, lastError)) lastError = request.error;
  }
  if (!latest) return { ...item, lastError, status: statusFromReports(item) };
  return {
    ...item,
    lastError,
    status: ITEM_STATUS[latest.status],
    latestRequestId: latest.requestId,
    daysRequested: latest.daysRequested,
    requestedAt: latest.requestedAt,
    acceptedAt: latest.acceptedAt,
    readyAt: latest.readyAt,
    failedAt: latest.failedAt,
    plaidRequestId: latest.plaidRequestId,
    attempts: latest.attempts,
  };
}

const ITEM_STATUS: Record<RequestStatus, ItemStatus> = {
  requested: 'requested',
  accepted: 'refreshing',
  ready: 'ready',
  failed: 'failed',
  report_failed: 'failed',
  overdue: 'overdue',
};

/** Rule 1: seen requests by offset; unseen ones above them, by outcome time then id. */
export function ranksAbove(a: RequestState, b: RequestState): boolean {
  if (a.requestId === b.requestId) return false;
  if (a.requestOffset !== null && b.requestOffset !== null) {
    return BigInt(a.requestOffset) > BigInt(b.requestOffset);
  }
  if (a.requestOffset === null && b.requestOffset !== null) return true;
  if (a.requestOffset !== null && b.requestOffset === null) return false;
  const at = outcomeAt(a);
  const bt = outcomeAt(b);
  if (at !== bt) return at > bt;
  return a.requestId > b.requestId;
}

function outcomeAt(request: RequestState): number {
  return Date.parse(request.acceptedAt ?? request.failedAt ?? '1970-01-01T00:00:00Z');
}

function newerError(candidate: ErrorFacts, current: ErrorFacts | null): boolean {
  if (!current) return true;
  const a = Date.parse(candidate.at);
  const b = Date.parse(current.at);
  return a !== b ? a > b : candidate.eventId > current.eventId;
}

/** Rule 6 for an Item known only from reports: the newest report's kind, a failure on a tie. */
function statusFromReports(item: ItemState): ItemStatus | null {
  if (item.failedAt === null) return item.readyAt === null ? null : 'ready';
  if (item.readyAt === null) return 'failed';
  return Date.parse(item.readyAt) > Date.parse(item.failedAt) ? 'ready' : 'failed';
}

function later(current: string | null, candidate: string): string {
  return current === null || Date.parse(candidate) > Date.parse(current) ? candidate : current;
}

function isBefore(position: Position, request: RequestState): boolean {
  return BigInt(position.offset) < BigInt(request.requestOffset ?? '0');
}

function reportFacts(event: EventOfType<'ReportReady'> | EventOfType<'ReportFailed'>): ReportFacts {
  const base = {
    eventId: event.metadata.id,
    itemId: event.data.item_id,
    receivedAt: event.data.received_at,
  };
  if (event.type === 'ReportReady') {
    return { ...base, kind: 'ready', error: null, foundBy: event.data.found_by };
  }
  const error = event.data.error;
  return {
    ...base,
    kind: 'failed',
    foundBy: 'webhook',
    error: {
      source: 'webhook',
      type: error.error_type,
      code: error.error_code,
      message: error.error_message,
      at: event.data.received_at,
      eventId: event.metadata.id,
    },
  };
}

function refreshError(failure: RefreshFailure, at: string, eventId: string): ErrorFacts {
  return {
    source: failure.source,
    type: failure.source === 'plaid' ? failure.error_type : null,
    code: failure.error_code,
    message: failure.error_message,
    at,
    eventId,
  };
}

/** A request nothing is known of yet: every fact null, status `requested`. */
export function emptyRequest(requestId: string, itemId: string): RequestState {
  return {
    requestId,
    itemId,
    requestOffset: null,
    requestPartition: null,
    daysRequested: null,
    requestedBy: null,
    requestedAt: null,
    status: 'requested',
    acceptedAt: null,
    readyAt: null,
    failedAt: null,
    plaidRequestId: null,
    attempts: null,
    coalescedInto: null,
    retryable: null,
    error: null,
    reportEventId: null,
    fetchedAt: null,
    overdueAt: null,
  };
}

function withRequest(state: ItemProjection, request: RequestState): ItemProjection {
  const requests = new Map(state.requests);
  requests.set(request.requestId, request);
  return { ...state, requests };
}

function assertNever(value: never): never {
  throw new Error(`unhandled event: ${JSON.stringify(value)}`);
}
