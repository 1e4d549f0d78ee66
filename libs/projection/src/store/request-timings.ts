import type { RequestState } from '../rules/refresh-projection';

/**
 * Seconds between a request's steps (as `refresh_requests.seconds_to_accept` and
 * `seconds_to_ready` hold them) for the requests a batch made timeable: what the projector's
 * `projector_refresh_seconds` histogram observes.
 */
export interface RequestTimings {
  /** From the request to its acceptance. */
  readonly toAccept: readonly number[];
  /** From the acceptance to the report that made it ready. */
  readonly toReady: readonly number[];
}

/**
 * What `after` times that `before` did not. A step counts once, when both its ends are first
 * known: topics are read in any order (an acceptance may be applied before its request), and a
 * report taking over from another moves `readyAt` without timing the request again. A report
 * received within the matching tolerance before the acceptance counts as 0 s.
 */
export function newTimings(
  before: RequestState | undefined,
  after: RequestState,
): { readonly toAccept: number | null; readonly toReady: number | null } {
  return {
    toAccept: newSpan(
      [before?.requestedAt, before?.acceptedAt],
      [after.requestedAt, after.acceptedAt],
    ),
    toReady: newSpan([before?.acceptedAt, before?.readyAt], [after.acceptedAt, after.readyAt]),
  };
}

type Span = readonly [from: string | null | undefined, to: string | null | undefined];

function newSpan(before: Span, [from, to]: Span): number | null {
  if (!from || !to || (before[0] && before[1])) return null;
  return Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);
}
