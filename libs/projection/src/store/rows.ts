import type {
  ErrorFacts,
  HealthFacts,
  ItemState,
  ReportFacts,
  RequestState,
} from '../rules/refresh-projection';

/**
 * How the projection's state maps to the rows of its tables, both ways: the store writes with
 * these and `check` compares a fold of the log with the tables through them.
 */
export const ITEM_COLUMNS = [
  'item_id',
  'status',
  'latest_request_id',
  'days_requested',
  'requested_at',
  'accepted_at',
  'ready_at',
  'failed_at',
  'plaid_request_id',
  'attempts',
  'refreshes',
  'last_error_source',
  'last_error_type',
  'last_error_code',
  'last_error_message',
  'last_error_at',
  'last_error_event_id',
  'fetched_at',
  'last_fetch_id',
  'last_successful_update_time',
  'transaction_count',
  'fetch_failed_at',
  'failed_fetch_id',
  'fetch_error_code',
  'fetch_error_message',
  'health_status',
  'health_reason',
  'consent_expires_at',
  'health_changed_at',
  'health_sequence',
  'health_event_id',
  'last_event_id',
  'last_event_topic',
  'last_event_partition',
  'last_event_offset',
] as const;

export const REQUEST_COLUMNS = [
  'request_id',
  'item_id',
  'request_partition',
  'request_offset',
  'days_requested',
  'requested_by',
  'requested_at',
  'status',
  'accepted_at',
  'ready_at',
  'failed_at',
  'plaid_request_id',
  'attempts',
  'coalesced_into',
  'retryable',
  'error_source',
  'error_type',
  'error_code',
  'error_message',
  'error_event_id',
  'report_event_id',
  'fetched_at',
  'overdue_at',
] as const;

export const REPORT_COLUMNS = [
  'item_id',
  'received_at',
  'event_id',
  'kind',
  'error_type',
  'error_code',
  'error_message',
  'found_by',
] as const;

export type ItemRow = Record<(typeof ITEM_COLUMNS)[number], unknown>;
export type RequestRow = Record<(typeof REQUEST_COLUMNS)[number], unknown>;
export type ReportRow = Record<(typeof REPORT_COLUMNS)[number], unknown>;

const iso = (value: unknown): string | null =>
  value === null || value === undefined
    ? null
    : value instanceof Date
      ? value.toISOString()
      : new Date(value as string).toISOString();

function errorToColumns(error: ErrorFacts | null, prefix: 'last_error' | 'error') {
  return {
    [`${prefix}_source`]: error?.source ?? null,
    [`${prefix}_type`]: error?.type ?? null,
    [`${prefix}_code`]: error?.code ?? null,
    [`${prefix}_message`]: error?.message ?? null,
    [`${prefix}_event_id`]: error?.eventId ?? null,
  };
}

/** The reverse of errorToColumns; null when there is no error code. */
function errorFromColumns(
  row: Record<string, unknown>,
  prefix: 'last_error' | 'error',
  at: unknown,
): ErrorFacts | null {
  if (row[`${prefix}_code`] === null) return null;
  return {
    source: row[`${prefix}_source`] as ErrorFacts['source'],
    type: row[`${prefix}_type`] as string | null,
    code: row[`${prefix}_code`] as string,
    message: row[`${prefix}_message`] as string,
    at: iso(at)!,
    eventId: row[`${prefix}_event_id`] as string,
  };
}

export function itemToRow(item: ItemState): ItemRow {
  return {
    item_id: item.itemId,
    status: item.status,
    latest_request_id: item.latestRequestId,
    days_requested: item.daysRequested,
    requested_at: item.requestedAt,
    accepted_at: item.acceptedAt,
    ready_at: item.readyAt,
    failed_at: item.failedAt,
    plaid_request_id: item.plaidRequestId,
    attempts: item.attempts,
    refreshes: item.refreshes,
    ...(errorToColumns(item.lastError, 'last_error') as Pick<
      ItemRow,
      | 'last_error_source'
      | 'last_error_type'
      | 'last_error_code'
      | 'last_error_message'
      | 'last_error_event_id'
    >),
    last_error_at: item.lastError?.at ?? null,
    fetched_at: item.lastFetch?.fetchedAt ?? null,
    last_fetch_id: item.lastFetch?.fetchId ?? null,
    last_successful_update_time: item.lastFetch?.lastSuccessfulUpdateTime ?? null,
    transaction_count: item.lastFetch?.transactionCount ?? null,
    fetch_failed_at: item.lastFetchFailure?.failedAt ?? null,
    failed_fetch_id: item.lastFetchFailure?.fetchId ?? null,
    fetch_error_code: item.lastFetchFailure?.code ?? null,
    fetch_error_message: item.lastFetchFailure?.message ?? null,
    health_status: item.health?.status ?? 'healthy',
    health_reason: item.health?.reason ?? null,
    consent_expires_at: item.health?.consentExpiresAt ?? null,
    health_changed_at: item.health?.changedAt ?? null,
    health_sequence: item.health?.sequence ?? null,
    health_event_id: item.health?.eventId ?? null,
    last_event_id: item.lastEvent?.eventId ?? null,
    last_event_topic: item.lastEvent?.topic ?? null,
    last_event_partition: item.lastEvent?.partition ?? null,
    last_event_offset: item.lastEvent?.offset ?? null,
  };
}

export function rowToItem(row: ItemRow): ItemState {
  return {
    itemId: row.item_id as string,
    status: row.status as ItemState['status'],
    latestRequestId: row.latest_request_id as string | null,
    daysRequested: row.days_requested as number | null,
    requestedAt: iso(row.requested_at),
    acceptedAt: iso(row.accepted_at),
    readyAt: iso(row.ready_at),
    failedAt: iso(row.failed_at),
    plaidRequestId: row.plaid_request_id as string | null,
    attempts: row.attempts as number | null,
    refreshes: row.refreshes as number,
    lastError: errorFromColumns(row, 'last_error', row.last_error_at),
    lastFetch:
      row.last_fetch_id === null
        ? null
        : {
            fetchId: row.last_fetch_id as string,
            fetchedAt: iso(row.fetched_at)!,
            lastSuccessfulUpdateTime: iso(row.last_successful_update_time)!,
            transactionCount: row.transaction_count as number,
          },
    lastFetchFailure:
      row.failed_fetch_id === null
        ? null
        : {
            fetchId: row.failed_fetch_id as string,
            failedAt: iso(row.fetch_failed_at)!,
            code: row.fetch_error_code as string,
            message: row.fetch_error_message as string,
          },
    health:
      row.health_event_id === null
        ? null
        : {
            status: row.health_status as HealthFacts['status'],
            reason: row.health_reason as string | null,
            consentExpiresAt: iso(row.consent_expires_at),
            changedAt: iso(row.health_changed_at)!,
            sequence: row.health_sequence as number,
            eventId: row.health_event_id as string,
          },
    lastEvent:
      row.last_event_id === null
        ? null
        : {
            eventId: row.last_event_id as string,
            topic: row.last_event_topic as string,
            partition: row.last_event_partition as number,
            offset: row.last_event_offset as string,
          },
  };
}

export function requestToRow(request: RequestState): RequestRow {
  return {
    request_id: request.requestId,
    item_id: request.itemId,
    request_partition: request.requestPartition,
    request_offset: request.requestOffset,
    days_requested: request.daysRequested,
    requested_by: request.requestedBy,
    requested_at: request.requestedAt,
    status: request.status,
    accepted_at: request.acceptedAt,
    ready_at: request.readyAt,
    failed_at: request.failedAt,
    plaid_request_id: request.plaidRequestId,
    attempts: request.attempts,
    coalesced_into: request.coalescedInto,
    retryable: request.retryable,
    ...(errorToColumns(request.error, 'error') as Pick<
      RequestRow,
      'error_source' | 'error_type' | 'error_code' | 'error_message' | 'error_event_id'
    >),
    report_event_id: request.reportEventId,
    fetched_at: request.fetchedAt,
    overdue_at: request.overdueAt,
  };
}

export function rowToRequest(row: RequestRow): RequestState {
  return {
    requestId: row.request_id as string,
    itemId: row.item_id as string,
    requestOffset: row.request_offset === null ? null : (row.request_offset as string),
    requestPartition: row.request_partition as number | null,
    daysRequested: row.days_requested as number | null,
    requestedBy: row.requested_by as string | null,
    requestedAt: iso(row.requested_at),
    status: row.status as RequestState['status'],
    acceptedAt: iso(row.accepted_at),
    readyAt: iso(row.ready_at),
    failedAt: iso(row.failed_at),
    plaidRequestId: row.plaid_request_id as string | null,
    attempts: row.attempts as number | null,
    coalescedInto: row.coalesced_into as string | null,
    retryable: row.retryable as boolean | null,
    // A request's error happened when it failed.
    error: errorFromColumns(row, 'error', row.failed_at),
    reportEventId: row.report_event_id as string | null,
    fetchedAt: iso(row.fetched_at),
    overdueAt: iso(row.overdue_at),
  };
}

export function reportToRow(report: ReportFacts): ReportRow {
  return {
    item_id: report.itemId,
    received_at: report.receivedAt,
    event_id: report.eventId,
    kind: report.kind,
    error_type: report.error?.type ?? null,
    error_code: report.error?.code ?? null,
    error_message: report.error?.message ?? null,
    found_by: report.foundBy,
  };
}

export function rowToReport(row: ReportRow): ReportFacts {
  const receivedAt = iso(row.received_at)!;
  const eventId = row.event_id as string;
  return {
    itemId: row.item_id as string,
    receivedAt,
    eventId,
    kind: row.kind as ReportFacts['kind'],
    foundBy: row.found_by as ReportFacts['foundBy'],
    // A report's error is the webhook's, as of when it was received.
    error:
      row.kind === 'failed'
        ? {
            source: 'webhook',
            type: row.error_type as string | null,
            code: row.error_code as string,
            message: row.error_message as string,
            at: receivedAt,
            eventId,
          }
        : null,
  };
}
