import {
  WORKER_SOURCE,
  createEvent,
  type RefreshAccepted,
  type RefreshFailed,
  type RefreshFailure,
  type RefusedFor,
  type RefreshRequested,
} from '@cashflow/contracts';
import { healthState } from '../health/health-events';
import { healthOf, type ItemHealth } from '../health/item-health';
import { failureFacts, type PlaidCallError } from '@cashflow/plaid-client';
import { parse as parseUuid, v5 as uuidv5 } from 'uuid';

/**
 * Fixed namespace for outcome ids: an outcome's id is derived from its request's id. Parsed once
 * (uuid parses a namespace given as a string on every call).
 */
const OUTCOME_NAMESPACE = parseUuid('6f1c2d0e-5b7a-4c1e-9a43-2f8d6b0c9e11');

/**
 * The id of the one outcome event of a request. Derived, not random, so an outcome published
 * again (after a crash, or by a second worker) keeps its id and consumers see it once.
 */
export function outcomeEventId(requestId: string): string {
  return uuidv5(requestId, OUTCOME_NAMESPACE);
}

/**
 * A request in a call: whose outcome it is and the days it asked for, and the trace context the
 * worker handled it in (its outcome joins that trace; absent with tracing off).
 */
export interface Member {
  readonly requestId: string;
  readonly days: number;
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/** The trace fields a member carries, for its outcome's metadata. */
export function memberTrace(member: Member): Pick<Member, 'traceparent' | 'tracestate'> {
  return {
    ...(member.traceparent ? { traceparent: member.traceparent } : {}),
    ...(member.traceparent && member.tracestate ? { tracestate: member.tracestate } : {}),
  };
}

export type Outcome =
  | { readonly kind: 'accepted'; readonly plaidRequestId: string; readonly attempts: number }
  | {
      readonly kind: 'failed';
      readonly error: RefreshFailure;
      readonly retryable: boolean;
      readonly attempts: number;
    };

/** What one Plaid call came to: an outcome for its requests, or when to try again. */
export type PlaidAnswer =
  | { readonly kind: 'outcome'; readonly outcome: Outcome; readonly answeredAt: number }
  | {
      readonly kind: 'retry';
      readonly attempts: number;
      readonly lastError: RefreshFailure;
      readonly dueAt: number;
    };

export function workerFailure(code: WorkerErrorCode, message: string): RefreshFailure {
  return { source: 'worker', error_code: code, error_message: message };
}

export type WorkerErrorCode =
  | 'INVALID_DAYS_REQUESTED'
  | 'UNKNOWN_ITEM'
  | 'TOKEN_UNREADABLE'
  | 'PLAID_TIMEOUT'
  | 'PLAID_UNREACHABLE'
  | 'PLAID_INVALID_RESPONSE';

/** The RefreshFailed error for a failed Plaid call: Plaid's own error when there is one. */
export function failureOf(error: PlaidCallError): RefreshFailure {
  const facts = failureFacts(error);
  return facts.source === 'plaid' ? facts : workerFailure(facts.error_code, facts.error_message);
}

/**
 * The outcome event answering `member`, for a call made with `days` on behalf of `leader`. A
 * member other than the leader says it was coalesced into the leader's call.
 */
export function outcomeEvent(
  itemId: string,
  member: Member,
  leader: Member,
  days: number,
  outcome: Outcome,
  now: Date,
): RefreshAccepted | RefreshFailed {
  const metadata = {
    id: outcomeEventId(member.requestId),
    source: WORKER_SOURCE,
    time: now.toISOString(),
    correlationId: member.requestId,
    causationId: member.requestId,
    ...memberTrace(member),
  };
  const coalesced =
    member.requestId === leader.requestId ? {} : { coalesced_into: leader.requestId };
  if (outcome.kind === 'accepted') {
    return createEvent(
      'RefreshAccepted',
      {
        item_id: itemId,
        refresh_request_id: member.requestId,
        plaid_request_id: outcome.plaidRequestId,
        days_requested: days,
        attempts: outcome.attempts,
        accepted_at: now.toISOString(),
        ...coalesced,
      },
      metadata,
    );
  }
  return createEvent(
    'RefreshFailed',
    {
      item_id: itemId,
      refresh_request_id: member.requestId,
      days_requested: days,
      error: outcome.error,
      retryable: outcome.retryable,
      attempts: outcome.attempts,
      failed_at: now.toISOString(),
      ...coalesced,
    },
    metadata,
  );
}

/**
 * RefreshFailed for a request refused without a Plaid call because its Item needs its user:
 * the Item's own error, and its health, so the refusal says why and what lifts it.
 */
export function refusedForHealth(
  request: RefreshRequested,
  days: number,
  item: ItemHealth,
  now: Date,
  trace: Pick<Member, 'traceparent' | 'tracestate'> = {},
): RefreshFailed {
  const health = healthState(healthOf(item));
  const reason = health.reason ?? health.status;
  const error: RefreshFailure = {
    source: 'worker',
    error_code: reason,
    error_message: `not sent to Plaid: the Item needs its user (${health.status}: ${reason}); refreshes go to Plaid again after LOGIN_REPAIRED, a new access token, or a request with force: true`,
  };
  return refusedEvent(request, days, error, now, { ...health, sequence: item.sequence }, trace);
}

/** RefreshFailed for a request refused before any Plaid call (invalid days, unknown Item). */
export function refusedEvent(
  request: RefreshRequested,
  days: number | null,
  error: RefreshFailure,
  now: Date,
  itemHealth?: RefusedFor,
  trace: Pick<Member, 'traceparent' | 'tracestate'> = {},
): RefreshFailed {
  return createEvent(
    'RefreshFailed',
    {
      item_id: request.data.item_id,
      refresh_request_id: request.metadata.id,
      days_requested: days,
      error,
      retryable: false,
      attempts: 0,
      failed_at: now.toISOString(),
      ...(itemHealth ? { item_health: itemHealth } : {}),
    },
    {
      id: outcomeEventId(request.metadata.id),
      source: WORKER_SOURCE,
      time: now.toISOString(),
      correlationId: request.metadata.id,
      causationId: request.metadata.id,
      ...trace,
    },
  );
}
