/**
 * The refresh projection's rules: how each event changes one Item's refresh state. Pure: no I/O,
 * no clock. The projector (projection-store.ts) loads an Item's state, folds a batch's events
 * with `evolve` and writes the result; tests fold the same events in memory.
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
 * 3. **Reports belong to refreshes by time.** Plaid's webhook names no request. A report
 *    (ReportReady or ReportFailed) completes every `accepted` request of the Item accepted no
 *    later than REPORT_CLOCK_TOLERANCE_MS after the report was received: `ready`, or
 *    `report_failed` with the webhook's error. A report can arrive before the RefreshAccepted it
 *    answers (the webhook can beat the worker's publish): the Item remembers its recent reports,
 *    and an acceptance is completed at once by the earliest report received after it.
 * 4. **A repeated report is a no-op**: with no accepted request waiting, a ReportReady changes
 *    nothing but the Item's list of recent reports.
 * 5. **A late outcome for an older request** (e.g. a RefreshFailed that arrives after a newer
 *    request is ready) updates that request's row only; the Item follows its latest request.
 * 6. **The Item's status** is its latest request's: requested -> `requested`, accepted ->
 *    `refreshing`, ready -> `ready`, failed or report_failed -> `failed`. An Item known only from
 *    reports (refreshed outside this system) takes its status from the newest report.
 * 7. **The Item's last error** is the newest failure of any of its requests or reports, by the
 *    time it happened, so a success does not hide the last thing that went wrong.
 * 8. **refreshes** counts the Item's refreshes whose data became ready: requests that made their
 *    own Plaid call (not coalesced into another's) and reached `ready`.
 * 9. PlaidWebhookReceived (other webhook codes) is kept in the event copy only.
 *
 * Assumed, not enforced: an Item's reports are applied in the order they were received (they
 * share one partition and the ingress publishes in arrival order). `lastEvent` records the last
 * event applied and so depends on arrival order; it is the only field that does.
 */
import type { CashflowEvent, EventOfType, RefreshFailure } from '@cashflow/contracts';

/**
 * How far a report's received_at may precede the acceptance it completes: the worker's and the
 * ingress's clocks differ a little, and a fast webhook can be received before the worker has
 * noted Plaid's answer. Kept small: a new refresh accepted within this long after the previous
 * report would be taken as completed by it.
 */
export const REPORT_CLOCK_TOLERANCE_MS = 1000;
/** Reports an Item remembers for acceptances that arrive after them. */
export const RECENT_REPORTS = 16;

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

export interface ReportFacts {
  readonly eventId: string;
  readonly kind: 'ready' | 'failed';
  readonly receivedAt: string;
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
  /** Newest first, at most RECENT_REPORTS. */
  readonly recentReports: readonly ReportFacts[];
  readonly lastEvent: (Position & { readonly eventId: string }) | null;
}

/** One Item's slice of the projection: its row and the request rows loaded with it. */
export interface ItemProjection {
  readonly item: ItemState;
  readonly requests: ReadonlyMap<string, RequestState>;
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
      recentReports: [],
      lastEvent: null,
    },
    requests: new Map(),
  };
}

/** Events that change refresh state (PlaidWebhookReceived does not). */
export type RefreshEvent = Exclude<CashflowEvent, { type: 'PlaidWebhookReceived' }>;

export function changesRefreshState(event: CashflowEvent): event is RefreshEvent {
  return event.type !== 'PlaidWebhookReceived';
}

/**
 * Request ids whose rows must be loaded before `events` are applied to an Item: the ids the
 * events name and the Item's latest request. The Item's `accepted` requests are needed too
 * (a report completes them); the store loads those by status.
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
      return state;
    default:
      return assertNever(event);
  }
  return {
    requests: next.requests,
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
  const report = [...state.item.recentReports].reverse().find((r) => answers(r, accepted));
  const request = report ? complete(accepted, report) : accepted;
  return countReady(withRequest(state, request), existing, request);
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
  const known = state.item.recentReports;
  if (known.some((r) => r.eventId === report.eventId)) return state;
  const recentReports = [...known, report].sort(newestFirst).slice(0, RECENT_REPORTS);
  let next: ItemProjection = { ...state, item: { ...state.item, recentReports } };
  for (const request of state.requests.values()) {
    if (request.status === 'accepted' && answers(report, request)) {
      const done = complete(request, report);
      next = countReady(withRequest(next, done), request, done);
    }
  }
  return next;
}

function answers(report: ReportFacts, request: RequestState): boolean {
  return (
    request.acceptedAt !== null &&
    Date.parse(report.receivedAt) + REPORT_CLOCK_TOLERANCE_MS >= Date.parse(request.acceptedAt)
  );
}

function complete(request: RequestState, report: ReportFacts): RequestState {
  return report.kind === 'ready'
    ? { ...request, status: 'ready', readyAt: report.receivedAt, reportEventId: report.eventId }
    : {
        ...request,
        status: 'report_failed',
        failedAt: report.receivedAt,
        error: report.error,
        reportEventId: report.eventId,
      };
}

function countReady(state: ItemProjection, before: RequestState, after: RequestState) {
  const becameReady =
    before.status !== 'ready' && after.status === 'ready' && after.coalescedInto === null;
  if (!becameReady) return state;
  return { ...state, item: { ...state.item, refreshes: state.item.refreshes + 1 } };
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
  for (const report of item.recentReports) {
    if (report.error && newerError(report.error, lastError)) lastError = report.error;
  }
  if (!latest) {
    const newest = item.recentReports[0];
    return {
      ...item,
      lastError,
      status: newest ? (newest.kind === 'ready' ? 'ready' : 'failed') : item.status,
      readyAt: newest?.kind === 'ready' ? newest.receivedAt : item.readyAt,
      failedAt: newest?.kind === 'failed' ? newest.receivedAt : item.failedAt,
    };
  }
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

function newestFirst(a: ReportFacts, b: ReportFacts): number {
  const diff = Date.parse(b.receivedAt) - Date.parse(a.receivedAt);
  if (diff !== 0) return diff;
  return a.eventId < b.eventId ? 1 : a.eventId > b.eventId ? -1 : 0;
}

function isBefore(position: Position, request: RequestState): boolean {
  return BigInt(position.offset) < BigInt(request.requestOffset ?? '0');
}

function reportFacts(event: EventOfType<'ReportReady'> | EventOfType<'ReportFailed'>): ReportFacts {
  const base = { eventId: event.metadata.id, receivedAt: event.data.received_at };
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
