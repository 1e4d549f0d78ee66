/**
 * The refresh projection's rules: how each event changes one Item's refresh state. Pure: no I/O,
 * no clock. The projector (projection-store.ts) loads what a batch needs of an Item's state,
 * folds the batch's events with `evolve` and writes the result; `check`, the tests and the
 * bench fold the same events in memory (fold.ts).
 *
 * ## The rules
 *
 * Events of one Item arrive over four topics that are consumed independently, so the projector
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
 *
 * `lastEvent` records the last event applied and so depends on arrival order; it is the only
 * field that does.
 */
import type { CashflowEvent, EventOfType, RefreshFailure } from '@cashflow/contracts';
import {
  answeringReport,
  receivedBefore,
  reportAnswers,
  type ReceivedReport,
} from './report-answers';

export type RequestStatus = 'requested' | 'accepted' | 'failed' | 'ready' | 'report_failed';
export type ItemStatus = 'requested' | 'refreshing' | 'ready' | 'failed';
export const ITEM_STATUSES: readonly ItemStatus[] = ['requested', 'refreshing', 'ready', 'failed'];

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
}

export interface ReportFacts extends ReceivedReport {
  readonly itemId: string;
  readonly kind: 'ready' | 'failed';
  readonly error: ErrorFacts | null;
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
      lastEvent: null,
    },
    requests: new Map(),
    reports: new Map(),
  };
}

/** Events that change refresh state (PlaidWebhookReceived does not). */
export type RefreshEvent = Exclude<
  CashflowEvent,
  { type: 'PlaidWebhookReceived' | 'ReportFetched' | 'ReportFetchFailed' }
>;

export function changesRefreshState(event: CashflowEvent): event is RefreshEvent {
  return (
    event.type !== 'PlaidWebhookReceived' &&
    event.type !== 'ReportFetched' &&
    event.type !== 'ReportFetchFailed'
  );
}

/**
 * Request ids whose rows must be loaded before `events` are applied to an Item: the ids the
 * events name and the Item's latest request. The Item's `accepted` requests are needed too
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
 * When the reports in `events` were received: the store loads the Item's requests completed by
 * a report received later that one of these answers (rule 3), so `evolve` can take them over.
 */
export function reportsReceivedIn(events: readonly CashflowEvent[]): string[] {
  return events.flatMap((e) =>
    e.type === 'ReportReady' || e.type === 'ReportFailed' ? [e.data.received_at] : [],
  );
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
    case 'PlaidWebhookReceived':
    case 'ReportFetched':
    case 'ReportFetchFailed':
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
  // The earliest report received after the acceptance completes it (rule 3).
  const report = answeringReport(state.reports.values(), data.accepted_at);
  const request = report ? complete(accepted, report) : accepted;
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
  reports.set(report.eventId, report);
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

/** Rule 3: does `report` complete `request`, first or instead of a later-received report? */
function answersBetter(report: ReportFacts, request: RequestState): boolean {
  if (request.acceptedAt === null || !reportAnswers(report.receivedAt, request.acceptedAt)) {
    return false;
  }
  const by = completedBy(request);
  if (by) return receivedBefore(report, by);
  return request.status === 'accepted';
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
  if (event.type === 'ReportReady') return { ...base, kind: 'ready', error: null };
  const error = event.data.error;
  return {
    ...base,
    kind: 'failed',
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

function emptyRequest(requestId: string, itemId: string): RequestState {
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
