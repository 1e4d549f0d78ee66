/**
 * The report fetcher's decisions for one Item, pure: what it knows of the Item's refreshes and
 * reports, and which fetch of /cashflow_report/get it owes. No I/O and no clock: `now` is passed
 * in. The store keeps this state per Item as JSON (report_fetch_items.state) and applies each
 * input under the Item's row lock; the runner makes the fetches it says are due.
 *
 * ## The rules
 *
 * Plaid's CASHFLOW_REPORT_READY names no refresh and carries no id, and Plaid retries and
 * replays it, so a report is matched to the refreshes it answers by time, with the projection's
 * one rule (`reportAnswers`: received no earlier than REPORT_CLOCK_TOLERANCE_MS before the
 * acceptance).
 *
 * 1. **An accepted refresh is pending** until a stored fetch brings its data: a fetch made for a
 *    report that answers it, over at least its days_requested, whose data Plaid last updated no
 *    earlier than the acceptance (`dataHolds`: no tolerance). A report that answers by time but
 *    shows older data (Plaid's for an earlier refresh, received just before or after this one
 *    was accepted) leaves it pending for the next report, or the latest one already read.
 * 2. **A ReportReady wants a fetch** when it answers a pending acceptance that no fetch wanted
 *    or under way will bring, or when the Item has never been fetched and nothing is under way
 *    (a refresh made outside this system). Otherwise it is a repeat (Plaid's retry, a replay, a
 *    second report for refreshes already covered) and fetches nothing. A report no later than
 *    the last one fetched wants nothing for an acceptance that fetch showed older data for: its
 *    data comes with a later report (`shownOlder`). The report of the fetch wanted or under way,
 *    read again (or a found report's own ReportReady, rule 9), is a repeat too.
 * 3. **The window** of a fetch is the largest days_requested among the acceptances it brings
 *    (DEFAULT_DAYS when it brings none).
 * 4. **One fetch at a time, at most one more.** Whatever wants a fetch while one is under way
 *    joins the one wanted next (the later report, the larger window, every request), so reports
 *    arriving during a fetch make at most one more.
 * 5. **An acceptance read after its report** (the outcome topic is behind the report topic) is
 *    brought by the last stored fetch if that fetch's report answers it and its window is large
 *    enough; a larger window wants one more fetch of the same report, unless a fetch under way
 *    that answers it covers its window (then that fetch brings it). A report that wanted
 *    nothing when it was read is remembered (the latest such, if later than the last fetched),
 *    and an acceptance read later that it answers wants a fetch of it. No report the last fetch
 *    showed older data for an acceptance (`shownOlder`) is fetched again for it.
 * 6. **ReportFailed** ends the acceptances it answers that no fetch is bringing: no data comes
 *    for them, and it fetches nothing.
 * 7. **A fetch that fails** and may succeed later is wanted again at `retryAt` (after what came
 *    meanwhile); one given up (an Item error, or too many attempts) drops the acceptances it was
 *    bringing, and what was wanted meanwhile runs next. The Item then counts as fetched for
 *    rule 2: the same report delivered again fetches nothing; a new refresh does.
 * 8. **`report fetch`** asks for one more fetch of the latest known report, over the last window.
 * 9. **A report that does not come is polled for** (`decidePoll`, with a PollPolicy). An
 *    acceptance no report is bringing (pending, in no fetch wanted or under way) is overdue
 *    `overdueAfterMs` after it was accepted; while no fetch is wanted or under way the Item is
 *    then due for a poll: /cashflow_report/get with count 1. When the answer's
 *    last_successful_update_time holds acceptances (`dataHolds`), a report is found: a
 *    ReportReady found by polling whose received_at is that time (so it answers exactly the
 *    acceptances whose data it holds, by the same rule as a webhook), and a fetch of it is
 *    wanted for them. The acceptances it does not hold are polled again after a backoff, and
 *    those accepted `giveUpAfterMs` ago or more are dropped with ReportOverdue; an answer that
 *    cannot change without the Item's user (an Item error) drops them at once. Polling stops as
 *    soon as no acceptance waits (a webhook came). A webhook after a poll found the data is a
 *    repeat (rule 2): the found report was received first. A report that comes after an
 *    acceptance was given up (the latest OVERDUE_KEPT are remembered; a report found by polling
 *    takes those it answers into its fetch at once) still wants a fetch for it, as the
 *    projection counts it answered; if that fetch does not bring its data either, it is dropped
 *    without a second ReportOverdue, and the same RefreshAccepted read again is not taken up
 *    again.
 */
import type { FetchFailure } from '@cashflow/contracts';
import { dataHolds, reportAnswers, receivedBefore } from '@cashflow/projection';

/** days_requested of a fetch that answers no known request: Plaid's default for a refresh. */
export const DEFAULT_DAYS = 365;

/** Acceptances given up (rule 9) remembered per Item, newest kept. */
export const OVERDUE_KEPT = 20;

/** A ReportReady as far as fetching goes (with its trace context, when it has one). */
export interface ReportRef {
  readonly eventId: string;
  readonly receivedAt: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/** A RefreshAccepted as far as fetching goes (with its trace context, when it has one). */
export interface Acceptance {
  readonly requestId: string;
  readonly days: number;
  readonly acceptedAt: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
  /** Rule 9: given up before, back because a late report answers it; never polled again. */
  readonly gaveUp?: boolean;
}

/** A fetch to make: the report it follows, its window, and the requests whose data it brings. */
export interface FetchPlan {
  readonly report: ReportRef;
  readonly days: number;
  readonly requestIds: readonly string[];
}

/** The last fetch stored. */
export interface StoredFetch {
  readonly fetchId: string;
  readonly report: ReportRef;
  readonly days: number;
  readonly lastSuccessfulUpdateTime: string;
  readonly fetchedAt: string;
}

export interface ItemFetches {
  readonly itemId: string;
  /** Acceptances whose data is not stored yet. */
  readonly pending: readonly Acceptance[];
  /** The fetch to make next, due at `dueAt`. */
  readonly wanted: FetchPlan | null;
  /** The fetch a runner has claimed (under way, or left by a runner that died). */
  readonly running: FetchPlan | null;
  readonly last: StoredFetch | null;
  /** The latest ReportReady that wanted nothing when read: an acceptance read later may want it. */
  readonly unused?: ReportRef | null;
  /** The report of the last fetch given up, while no fetch has been stored. */
  readonly gaveUp?: ReportRef | null;
  /** Failed attempts at the fetch wanted or under way. */
  readonly attempts: number;
  /** When the wanted fetch may start (epoch ms); null when none is wanted. */
  readonly dueAt: number | null;
  /** Rule 9: polls made for acceptances no report came for, and when to poll next. */
  readonly polling?: Polling | null;
  /** Rule 9: acceptances given up with ReportOverdue (the latest OVERDUE_KEPT). */
  readonly overdue?: readonly Acceptance[];
}

/** Rule 9: how polling for acceptances no report came for goes. */
export interface Polling {
  /** /cashflow_report/get calls made since an acceptance became overdue. */
  readonly polls: number;
  /** When to poll again (epoch ms). */
  readonly nextAt: number;
  /** What the last answered poll showed. */
  readonly lastSuccessfulUpdateTime: string | null;
  /** The last poll's error; null when it was answered. */
  readonly lastError: FetchFailure | null;
}

/** Rule 9's settings (REPORT_OVERDUE_AFTER_MS, REPORT_GIVE_UP_AFTER_MS, REPORT_POLL_*). */
export interface PollPolicy {
  /** An acceptance no report came for this long after it is polled for. */
  readonly overdueAfterMs: number;
  /** Polling for an acceptance ends this long after it, with ReportOverdue. */
  readonly giveUpAfterMs: number;
  /** The n-th poll is followed by the next after baseMs * 2^(n-1), at most maxMs. */
  readonly backoff: { readonly baseMs: number; readonly maxMs: number };
}

/** A poll to make: for which acceptances, over which window. */
export interface PollPlan {
  readonly acceptances: readonly Acceptance[];
  readonly days: number;
}

/** What Plaid answered a poll. */
export type PollAnswer =
  | {
      readonly kind: 'answered';
      readonly lastSuccessfulUpdateTime: string;
      readonly plaidRequestId: string;
    }
  /** `permanent`: an error that will not pass without the Item's user (or someone) acting. */
  | { readonly kind: 'failed'; readonly error: FetchFailure; readonly permanent: boolean };

/** What a poll decided besides the Item's next state. */
export interface PollDecision {
  readonly state: ItemFetches;
  /** Polls made for the waiting acceptances, this one included. */
  readonly polls: number;
  /** A report found: the ReportReady to publish (received at `report.receivedAt`). */
  readonly found: {
    readonly report: ReportRef;
    readonly requestIds: readonly string[];
    readonly lastSuccessfulUpdateTime: string;
    readonly plaidRequestId: string;
  } | null;
  /** Acceptances given up: the ReportOverdue to publish. */
  readonly overdue: {
    readonly acceptances: readonly Acceptance[];
    readonly polls: number;
    readonly lastSuccessfulUpdateTime: string | null;
    readonly lastError: FetchFailure | null;
  } | null;
}

export type FetchInput =
  | { readonly kind: 'accepted'; readonly acceptance: Acceptance }
  | { readonly kind: 'report_ready'; readonly report: ReportRef }
  | { readonly kind: 'report_failed'; readonly report: ReportRef }
  | { readonly kind: 'fetch_asked' }
  | { readonly kind: 'claimed' }
  | { readonly kind: 'fetched'; readonly fetch: StoredFetch }
  /** retryAt: when to try again (epoch ms); null when the fetch is given up. */
  | { readonly kind: 'failed'; readonly retryAt: number | null };

export function initialItemFetches(itemId: string): ItemFetches {
  return {
    itemId,
    pending: [],
    wanted: null,
    running: null,
    last: null,
    unused: null,
    attempts: 0,
    dueAt: null,
  };
}

export function evolve(state: ItemFetches, input: FetchInput, now: number): ItemFetches {
  const next = apply(state, input, now);
  // Rule 9: polling ends once no acceptance waits for a report.
  return next.polling && awaiting(next).length === 0 ? { ...next, polling: null } : next;
}

function apply(state: ItemFetches, input: FetchInput, now: number): ItemFetches {
  switch (input.kind) {
    case 'accepted':
      return onAccepted(state, input.acceptance, now);
    case 'report_ready':
      return onReportReady(state, input.report, now);
    case 'report_failed':
      return onReportFailed(state, input.report);
    case 'fetch_asked':
      return onFetchAsked(state, now);
    case 'claimed':
      return {
        ...state,
        running: merge(state.running, state.wanted),
        wanted: null,
        dueAt: null,
      };
    case 'fetched':
      return onFetched(state, input.fetch, now);
    case 'failed':
      return onFailed(state, input.retryAt, now);
    default:
      return assertNever(input);
  }
}

/** The fetch a runner should make now, if one is due. */
export function dueFetch(state: ItemFetches, now: number): FetchPlan | null {
  return state.wanted && state.dueAt !== null && state.dueAt <= now ? state.wanted : null;
}

/**
 * Rule 9: when the Item is due for a poll (an acceptance is overdue and the backoff since the
 * last poll has passed); null while a fetch is wanted or under way.
 */
export function pollDueAt(state: ItemFetches, policy: PollPolicy): number | null {
  if (state.wanted || state.running) return null;
  const waiting = awaiting(state);
  if (waiting.length === 0) return null;
  return Math.max(state.polling?.nextAt ?? 0, firstOverdueAt(waiting, policy));
}

/** When the Item is next due for anything: its wanted fetch, or a poll. */
export function nextDueAt(state: ItemFetches, policy: PollPolicy): number | null {
  const poll = pollDueAt(state, policy);
  if (state.dueAt === null) return poll;
  return poll === null ? state.dueAt : Math.min(state.dueAt, poll);
}

/** Rule 9: the poll to make now, if one is due (for the acceptances overdue by now). */
export function duePoll(state: ItemFetches, now: number, policy: PollPolicy): PollPlan | null {
  const at = pollDueAt(state, policy);
  if (at === null || at > now) return null;
  const overdue = awaiting(state).filter((a) => overdueAt(a, policy) <= now);
  if (overdue.length === 0) return null;
  return { acceptances: overdue, days: Math.max(...overdue.map((a) => a.days)) };
}

/**
 * Rule 9: what a poll's answer means for the Item, decided against its state now (a webhook may
 * have come while the poll ran). `reportId` names the ReportReady if one is found.
 */
export function decidePoll(
  state: ItemFetches,
  plan: PollPlan,
  answer: PollAnswer,
  now: number,
  policy: PollPolicy,
  reportId: string,
): PollDecision {
  const polls = (state.polling?.polls ?? 0) + 1;
  const waiting = awaiting(state);
  let next: ItemFetches = state;
  let found: PollDecision['found'] = null;
  if (answer.kind === 'answered') {
    const lut = new Date(answer.lastSuccessfulUpdateTime).toISOString();
    const held = waiting.filter((a) => dataHolds(lut, a.acceptedAt));
    if (held.length > 0) {
      const report = { eventId: reportId, receivedAt: lut };
      // Acceptances given up that the found report answers join its fetch now, as they would
      // when its ReportReady is read (which then finds nothing left to fetch).
      const revived = revive(next, report);
      const back = revived.pending.filter((a) => !next.pending.includes(a));
      next = want(revived, planFor(report, [...held, ...back]), now);
      found = {
        report,
        requestIds: held.map((a) => a.requestId),
        lastSuccessfulUpdateTime: lut,
        plaidRequestId: answer.plaidRequestId,
      };
    }
  }
  const polling: Polling = {
    polls,
    nextAt: now + pollDelay(polls, policy),
    lastSuccessfulUpdateTime:
      answer.kind === 'answered'
        ? answer.lastSuccessfulUpdateTime
        : (state.polling?.lastSuccessfulUpdateTime ?? null),
    lastError: answer.kind === 'failed' ? answer.error : null,
  };
  const stillWaiting = awaiting(next);
  const planned = new Set(plan.acceptances.map((a) => a.requestId));
  const givenUp = stillWaiting.filter(
    (a) =>
      (answer.kind === 'failed' && answer.permanent && planned.has(a.requestId)) ||
      Date.parse(a.acceptedAt) + policy.giveUpAfterMs <= now,
  );
  const dropped = new Set(givenUp.map((a) => a.requestId));
  next = {
    ...next,
    pending: next.pending.filter((a) => !dropped.has(a.requestId)),
    polling,
    overdue: [...(next.overdue ?? []), ...givenUp].slice(-OVERDUE_KEPT),
  };
  if (awaiting(next).length === 0) next = { ...next, polling: null };
  return {
    state: next,
    polls,
    found,
    overdue: givenUp.length
      ? {
          acceptances: givenUp,
          polls,
          lastSuccessfulUpdateTime: polling.lastSuccessfulUpdateTime,
          lastError: polling.lastError,
        }
      : null,
  };
}

function overdueAt(acceptance: Acceptance, policy: PollPolicy): number {
  return Date.parse(acceptance.acceptedAt) + policy.overdueAfterMs;
}

function firstOverdueAt(waiting: readonly Acceptance[], policy: PollPolicy): number {
  return Math.min(...waiting.map((a) => overdueAt(a, policy)));
}

function pollDelay(polls: number, policy: PollPolicy): number {
  const { baseMs, maxMs } = policy.backoff;
  return Math.min(maxMs, baseMs * 2 ** Math.min(polls - 1, 30));
}

/** Whether `report fetch` can ask for a fetch: a report of the Item must be known. */
export function latestReport(state: ItemFetches): ReportRef | null {
  return [state.last?.report, state.running?.report, state.wanted?.report].reduce<ReportRef | null>(
    (latest, report) => (report && (!latest || receivedBefore(latest, report)) ? report : latest),
    null,
  );
}

/** Rules 1 and 5. */
function onAccepted(state: ItemFetches, acceptance: Acceptance, now: number): ItemFetches {
  const known =
    state.pending.some((a) => a.requestId === acceptance.requestId) ||
    (state.overdue ?? []).some((a) => a.requestId === acceptance.requestId) ||
    inPlan(state.wanted, acceptance.requestId) ||
    inPlan(state.running, acceptance.requestId);
  if (known) return state;
  const last = state.last;
  const lastHolds =
    last &&
    reportAnswers(last.report.receivedAt, acceptance.acceptedAt) &&
    dataHolds(last.lastSuccessfulUpdateTime, acceptance.acceptedAt);
  if (lastHolds && acceptance.days <= last.days) return state;
  const withPending = addPending(state, acceptance);
  // A report answers it only when it does by time and the last fetch did not show it older data.
  const answers = (report: ReportRef | null | undefined): report is ReportRef =>
    !!report &&
    reportAnswers(report.receivedAt, acceptance.acceptedAt) &&
    !shownOlder(state, report, acceptance);
  // A fetch under way that answers it brings it (a wider one, say, wanted by an acceptance read
  // just before it with the same window), or is followed by one over its window.
  const running = state.running;
  if (running && answers(running.report)) {
    if (acceptance.days > running.days) {
      return want(withPending, planFor(running.report, [acceptance]), now);
    }
    const requestIds = [...running.requestIds, acceptance.requestId];
    return { ...withPending, running: { ...running, requestIds } };
  }
  if (lastHolds) return want(withPending, planFor(last.report, [acceptance]), now);
  const wanted = state.wanted;
  if (wanted && answers(wanted.report)) {
    return want(withPending, planFor(wanted.report, [acceptance]), now);
  }
  const unused = state.unused;
  if (answers(unused)) {
    return want({ ...withPending, unused: null }, planFor(unused, [acceptance]), now);
  }
  return withPending;
}

/** Rules 2 and 3. */
function onReportReady(state: ItemFetches, report: ReportRef, now: number): ItemFetches {
  // The report of the fetch wanted or under way, read again (or a found report's own event):
  // what it answers was decided when that fetch was wanted.
  if (
    state.running?.report.eventId === report.eventId ||
    state.wanted?.report.eventId === report.eventId
  ) {
    return state;
  }
  state = revive(state, report);
  const answered = unplanned(state).filter(
    (a) => reportAnswers(report.receivedAt, a.acceptedAt) && !shownOlder(state, report, a),
  );
  const neverFetched = !state.last && !state.gaveUp && !state.running && !state.wanted;
  if (answered.length === 0 && !neverFetched) {
    // Remembered only when it is the latest report read and later than the last one fetched:
    // an acceptance read later that an earlier one answers is answered by that fetch's report.
    const unused = state.unused;
    const superseded =
      (unused && !receivedBefore(unused, report)) ||
      (state.last && !receivedBefore(state.last.report, report));
    return superseded ? state : { ...state, unused: report };
  }
  return want(state, planFor(report, answered), now);
}

/** Rule 9: acceptances given up that a late report answers wait for its fetch after all. */
function revive(state: ItemFetches, report: ReportRef): ItemFetches {
  const overdue = state.overdue ?? [];
  const back = overdue.filter(
    (a) => reportAnswers(report.receivedAt, a.acceptedAt) && !shownOlder(state, report, a),
  );
  if (back.length === 0) return state;
  return {
    ...state,
    overdue: overdue.filter((a) => !back.includes(a)),
    pending: [...state.pending, ...back.map((a) => ({ ...a, gaveUp: true }))],
  };
}

/**
 * Rules 1 and 2: whether the last stored fetch, of `report` or of one received after it, showed
 * data older than the acceptance. Fetching `report` again would show no newer data for it than
 * that (its data comes with a later report), so `report` read again (a replay, a consumer
 * reading on from its last committed offset) wants nothing for it.
 */
function shownOlder(state: ItemFetches, report: ReportRef, a: Acceptance): boolean {
  const last = state.last;
  return (
    !!last &&
    !receivedBefore(last.report, report) &&
    !dataHolds(last.lastSuccessfulUpdateTime, a.acceptedAt)
  );
}

/** Rule 6. */
function onReportFailed(state: ItemFetches, report: ReportRef): ItemFetches {
  const ended = new Set(
    unplanned(state)
      .filter((a) => reportAnswers(report.receivedAt, a.acceptedAt))
      .map((a) => a.requestId),
  );
  if (ended.size === 0) return state;
  return { ...state, pending: state.pending.filter((a) => !ended.has(a.requestId)) };
}

/** Rule 8. */
function onFetchAsked(state: ItemFetches, now: number): ItemFetches {
  const report = latestReport(state);
  if (!report) return state;
  const days = state.wanted?.days ?? state.running?.days ?? state.last?.days ?? DEFAULT_DAYS;
  return want(state, { report, days, requestIds: [] }, now);
}

/** Rule 1: the requests whose data a stored fetch brings (pending ones only). */
export function broughtBy(
  state: ItemFetches,
  fetch: Pick<StoredFetch, 'report' | 'days' | 'lastSuccessfulUpdateTime'>,
): string[] {
  return state.pending.filter((a) => brings(fetch, a)).map((a) => a.requestId);
}

function brings(
  fetch: Pick<StoredFetch, 'report' | 'days' | 'lastSuccessfulUpdateTime'>,
  a: Acceptance,
): boolean {
  return (
    reportAnswers(fetch.report.receivedAt, a.acceptedAt) &&
    a.days <= fetch.days &&
    dataHolds(fetch.lastSuccessfulUpdateTime, a.acceptedAt)
  );
}

/** Rules 1, 4 and 5 after a fetch is stored. */
function onFetched(state: ItemFetches, fetch: StoredFetch, now: number): ItemFetches {
  // An acceptance given up before (rule 9) is dropped once a fetch of a report answering it is
  // stored, whether or not it brought its data: it was answered ReportOverdue already.
  const pending = state.pending.filter(
    (a) => !brings(fetch, a) && !(a.gaveUp && reportAnswers(fetch.report.receivedAt, a.acceptedAt)),
  );
  const next: ItemFetches = {
    ...state,
    pending,
    running: null,
    last: fetch,
    attempts: 0,
    dueAt: state.wanted ? now : null,
  };
  // Acceptances the report answers by time but did not bring: its data predates them (rule 1),
  // so they wait for a later report (the latest one read, if any), or its window was smaller
  // (read after the fetch began), so the same report is fetched again over theirs.
  const left = pending.filter(
    (a) =>
      reportAnswers(fetch.report.receivedAt, a.acceptedAt) && !inPlan(state.wanted, a.requestId),
  );
  const older = left.filter((a) => !dataHolds(fetch.lastSuccessfulUpdateTime, a.acceptedAt));
  const wider = left.filter((a) => !older.includes(a));
  let result: ItemFetches = { ...next, gaveUp: null };
  const unused = state.unused;
  if (older.length && unused && receivedBefore(fetch.report, unused)) {
    result = want({ ...result, unused: null }, planFor(unused, older), now);
  }
  return wider.length ? want(result, planFor(fetch.report, wider), now) : result;
}

/** Rule 7. */
function onFailed(state: ItemFetches, retryAt: number | null, now: number): ItemFetches {
  if (retryAt !== null) {
    return {
      ...state,
      wanted: merge(state.running, state.wanted),
      running: null,
      attempts: state.attempts + 1,
      dueAt: Math.max(retryAt, now),
    };
  }
  const dropped = new Set(state.running?.requestIds ?? []);
  return {
    ...state,
    pending: state.pending.filter((a) => !dropped.has(a.requestId)),
    running: null,
    gaveUp: state.last ? null : (state.running?.report ?? null),
    attempts: 0,
    dueAt: state.wanted ? now : null,
  };
}

function want(state: ItemFetches, plan: FetchPlan, now: number): ItemFetches {
  return {
    ...state,
    wanted: merge(state.wanted, plan),
    dueAt: state.wanted ? state.dueAt : now,
  };
}

function planFor(report: ReportRef, acceptances: readonly Acceptance[]): FetchPlan {
  return {
    report,
    days: acceptances.length ? Math.max(...acceptances.map((a) => a.days)) : DEFAULT_DAYS,
    requestIds: acceptances.map((a) => a.requestId),
  };
}

/** Rule 4: the later report, the larger window, every request. */
function merge(a: FetchPlan | null, b: FetchPlan | null): FetchPlan | null {
  if (!a) return b;
  if (!b) return a;
  return {
    report: receivedBefore(a.report, b.report) ? b.report : a.report,
    days: Math.max(a.days, b.days),
    requestIds: [...new Set([...a.requestIds, ...b.requestIds])],
  };
}

/** Pending acceptances no fetch wanted or under way is bringing. */
function unplanned(state: ItemFetches): Acceptance[] {
  return state.pending.filter(
    (a) => !inPlan(state.wanted, a.requestId) && !inPlan(state.running, a.requestId),
  );
}

/** Rule 9: pending acceptances no report is bringing that polling waits for. */
function awaiting(state: ItemFetches): Acceptance[] {
  return unplanned(state).filter((a) => !a.gaveUp);
}

function inPlan(plan: FetchPlan | null, requestId: string): boolean {
  return plan?.requestIds.includes(requestId) ?? false;
}

function addPending(state: ItemFetches, acceptance: Acceptance): ItemFetches {
  return { ...state, pending: [...state.pending, acceptance] };
}

function assertNever(value: never): never {
  throw new Error(`unhandled input: ${JSON.stringify(value)}`);
}
