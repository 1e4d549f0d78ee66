/**
 * Rule 3 of the projection, the one place it lives: which report answers which acceptance.
 * Plaid's CASHFLOW_REPORT_READY names no request, so a report is matched to a refresh by time:
 * it answers every acceptance of its Item no later than REPORT_CLOCK_TOLERANCE_MS after it was
 * received, and an acceptance is answered by the earliest report that answers it (by
 * received_at, then event id). The projector, `check` and `refresh --wait` all use this.
 */

/**
 * How far a report's received_at may precede the acceptance it completes: the worker's and the
 * ingress's clocks differ a little, and a fast webhook can be received before the worker has
 * noted Plaid's answer. Kept small: a new refresh accepted within this long after the previous
 * report would be taken as completed by it.
 */
export const REPORT_CLOCK_TOLERANCE_MS = 1000;

/** A report as far as matching goes: when it was received, and its event id for ties. */
export interface ReceivedReport {
  readonly eventId: string;
  readonly receivedAt: string;
}

/** The earliest received_at of a report that answers an acceptance at `acceptedAt` (ISO). */
export function earliestAnswerAt(acceptedAt: string): string {
  return new Date(Date.parse(acceptedAt) - REPORT_CLOCK_TOLERANCE_MS).toISOString();
}

/** The latest acceptance a report received at `receivedAt` (ISO) answers. */
export function latestAnsweredAt(receivedAt: string): string {
  return new Date(Date.parse(receivedAt) + REPORT_CLOCK_TOLERANCE_MS).toISOString();
}

/** Does a report received at `receivedAt` answer an acceptance at `acceptedAt`? */
export function reportAnswers(receivedAt: string, acceptedAt: string): boolean {
  return Date.parse(receivedAt) + REPORT_CLOCK_TOLERANCE_MS >= Date.parse(acceptedAt);
}

/**
 * Whether data Plaid last updated at `lastSuccessfulUpdateTime` holds a refresh accepted at
 * `acceptedAt`: no earlier. Strict, unlike `reportAnswers`: Plaid finishes a refresh (and moves
 * the time) an extraction after accepting it, seconds at least, far more than the skew between
 * clocks kept by NTP, while a tolerance here would let the data of the refresh before count for
 * one accepted just after it (its report received within the tolerance before the acceptance).
 * The report fetcher decides with it which requests a fetch brings; `check` verifies it.
 */
export function dataHolds(lastSuccessfulUpdateTime: string, acceptedAt: string): boolean {
  return Date.parse(lastSuccessfulUpdateTime) >= Date.parse(acceptedAt);
}

/** Was report `a` received before report `b` (received_at, then event id)? */
export function receivedBefore(a: ReceivedReport, b: ReceivedReport): boolean {
  const diff = Date.parse(a.receivedAt) - Date.parse(b.receivedAt);
  return diff !== 0 ? diff < 0 : a.eventId < b.eventId;
}

/** Of `reports`, the one that answers an acceptance at `acceptedAt`; undefined when none does. */
export function answeringReport<R extends ReceivedReport>(
  reports: Iterable<R>,
  acceptedAt: string,
): R | undefined {
  let earliest: R | undefined;
  for (const report of reports) {
    if (!reportAnswers(report.receivedAt, acceptedAt)) continue;
    if (!earliest || receivedBefore(report, earliest)) earliest = report;
  }
  return earliest;
}
