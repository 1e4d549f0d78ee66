/**
 * The refresh worker's per-Item decisions: which Plaid call answers a request, when a call is
 * made, and what happens when Plaid answers. Pure: no I/O, no clock (`now` is passed in). The
 * service (refresh.service.ts) feeds it what happened, performs each decision, and folds the
 * decision into the Item's state with `evolve`.
 *
 * ## The rules
 *
 * 1. **One call at a time per Item.** Requests of one Item are decided in the order they arrive;
 *    a call answers every request in it (its *members*): the first member leads, the others are
 *    coalesced into it.
 * 2. **One request per id**: a request whose id another source or Item used first is refused
 *    (dead-lettered, REQUEST_ID_CONFLICT); CloudEvents ids are unique per source only. A request
 *    whose outcome is recorded is **answered again** with that outcome and never called (a
 *    redelivery, a request handed over by another worker).
 * 3. **Refuse** days_requested outside 1..730, before any call; then refuse a request for an Item
 *    known to need its user (item health, health/item-health.ts), unless the request is forced
 *    or refusals are off: the shell says so in `KnownFacts.needsUser`.
 * 4. **Join the parked call**: while the Item has a call parked for a retry (in PostgreSQL), every
 *    new request joins it; a request already in it is done.
 * 5. **Join the running call**: while the Item's call runs and Plaid has not answered it, a request
 *    asking for no more days joins it, if the call has not left for Plaid yet, or left after the
 *    request reached Kafka, or left less than the per-Item spacing ago (rule 7's test: a slow
 *    call that left long before the request existed does not answer it).
 * 6. **Join the next call**: otherwise, while a call runs or one waits, the request joins the
 *    waiting call, which asks for the most days any of its members wants.
 * 7. **Answer from the last call**: with nothing running or waiting, a request asking for no more
 *    days than the Item's latest call is answered by that call, as of when Plaid answered it, if the
 *    call left for Plaid after the request reached Kafka (the broker's timestamp, never the
 *    request's own ce_time) or less than the per-Item spacing (window / limit) ago.
 * 8. **Start a call** when the per-Item window (`limit` calls per `windowMs`) has room;
 *    otherwise **wait for the window** as the waiting call.
 * 9. **Just before a call leaves** (once the client's rate limit lets it go), members answered
 *    meanwhile elsewhere leave it and are answered with their recorded outcome; a call with no
 *    member left is not made. The call is then written to PostgreSQL, claimed by this worker, so
 *    a member handed to another worker while the call is out is not called again (rule 4); if the
 *    Item already has a call there (another worker's, or parked), the members **join it instead**.
 *    Plaid is asked for the most days its remaining members want.
 * 10. **Withdrawn** members (their partition moved to another worker, or this worker is stopping)
 *    leave the waiting call, or the running call if it has not left; they get no outcome here.
 * 11. **Plaid's answer**: an outcome answers every member, as of when Plaid answered; a failure
 *    worth retrying parks the call (in PostgreSQL; the retry runner takes it from there).
 * 12. **When a call ends**, the waiting call joins the parked call if the ended call was parked;
 *    is answered by the ended call under rule 7's spacing; otherwise starts, or waits for the window.
 */
import { memberTrace, type Member as Requested, type Outcome, type PlaidAnswer } from './outcomes';
import { freeAt, inWindow, type RateLimit } from '@cashflow/plaid-client';

export const MIN_DAYS = 1;
export const MAX_DAYS = 730;

/** Plaid's per-Item limit, kept by the worker so it does not provoke 429s. */
export type PerItemLimit = RateLimit;

/** A request in a call. `ticket` tells apart two deliveries of one request. */
export interface Member extends Requested {
  readonly ticket: number;
}

export interface Call {
  readonly id: number;
  /** Leader first. */
  readonly members: readonly Member[];
  /** The most days any member wants: what Plaid is asked for. */
  readonly days: number;
}

export interface RunningCall extends Call {
  /** When it left for Plaid; absent while it waits for the client's rate limit. */
  readonly leftAt?: number;
  /** Set once Plaid answered: the members are fixed, later requests wait for the next call. */
  readonly answered?: 'outcome' | 'parked' | 'not_made';
}

export interface LastCall {
  readonly leftAt: number;
  readonly days: number;
  readonly leader: Member;
  readonly outcome: Outcome;
  /** When Plaid answered: the accepted_at / failed_at of every request it answers. */
  readonly answeredAt: number;
}

export interface ItemCalls {
  readonly running?: RunningCall;
  readonly next?: Call;
  readonly last?: LastCall;
  /** When the Item's latest calls left for Plaid, oldest first; at most `limit` kept. */
  readonly sent: readonly number[];
  /** Calls created so far: the next call's id. */
  readonly calls: number;
}

export const initialItemCalls = (): ItemCalls => ({ sent: [], calls: 0 });

/** A RefreshRequested as the decider sees it. */
export interface ArrivingRequest {
  readonly ticket: number;
  readonly requestId: string;
  /** As asked (after the default); may be out of range. */
  readonly days: number;
  /** When the request reached Kafka (the record's broker timestamp), ms. */
  readonly reachedKafkaAt: number;
  /** The trace context it is handled in; its member (and outcome) carries it. */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/** What PostgreSQL says of the request and its Item when it arrives. */
export interface KnownFacts {
  /** The id belongs to another request (another source or Item). */
  readonly idTaken?: boolean;
  readonly recorded: boolean;
  /** Request ids in the Item's parked call, when it has one. */
  readonly parked?: readonly string[];
  /** The Item needs its user and this request is not forced (rule 3): its error code. */
  readonly needsUser?: string;
}

export type RetryLater = Extract<PlaidAnswer, { kind: 'retry' }>;

export type ItemInput =
  | {
      readonly type: 'RequestArrived';
      readonly request: ArrivingRequest;
      readonly known: KnownFacts;
    }
  | { readonly type: 'WindowOpened'; readonly callId: number }
  | {
      readonly type: 'CallLeaving';
      readonly callId: number;
      /** Request ids of members whose outcome is recorded already. */
      readonly answered: ReadonlySet<string>;
      /**
       * The call is written to PostgreSQL and claimed by this process; false when the Item has a
       * call there already (another worker's, or parked).
       */
      readonly claimed: boolean;
    }
  | { readonly type: 'PlaidAnswered'; readonly callId: number; readonly answer: PlaidAnswer }
  | { readonly type: 'CallEnded'; readonly callId: number }
  | { readonly type: 'MembersWithdrawn'; readonly tickets: ReadonlySet<number> };

/** What happens to the waiting call when the running one ends (rule 12). */
export type NextStep =
  | { readonly type: 'Rest' }
  | { readonly type: 'NextJoinsParked'; readonly call: Call }
  | { readonly type: 'NextAnsweredByLast'; readonly call: Call; readonly last: LastCall }
  | { readonly type: 'StartCall'; readonly call: RunningCall }
  | { readonly type: 'WaitForWindow'; readonly call: Call; readonly until: number };

export type ItemDecision =
  // RequestArrived
  | { readonly type: 'RefuseTakenId'; readonly ticket: number }
  | { readonly type: 'AnswerAgain'; readonly ticket: number }
  | { readonly type: 'AlreadyParked'; readonly ticket: number }
  | { readonly type: 'Refuse'; readonly ticket: number; readonly days: number }
  | { readonly type: 'RefuseNeedsUser'; readonly ticket: number; readonly days: number }
  | { readonly type: 'JoinParked'; readonly member: Member }
  | { readonly type: 'JoinRunning'; readonly callId: number; readonly member: Member }
  /** The waiting call with the member added (a new waiting call if there was none). */
  | { readonly type: 'JoinNext'; readonly call: Call; readonly member: Member }
  | { readonly type: 'AnswerFromLast'; readonly member: Member; readonly last: LastCall }
  // RequestArrived, WindowOpened
  | { readonly type: 'StartCall'; readonly call: RunningCall }
  | { readonly type: 'WaitForWindow'; readonly call: Call; readonly until: number }
  // CallLeaving
  | {
      readonly type: 'MakeCall';
      readonly call: RunningCall;
      readonly answered: readonly Member[];
      /** The Item's send times in its window, this call's included. */
      readonly sent: readonly number[];
    }
  | { readonly type: 'SkipCall'; readonly callId: number; readonly answered: readonly Member[] }
  | {
      readonly type: 'JoinParkedInstead';
      readonly call: RunningCall;
      readonly answered: readonly Member[];
    }
  // PlaidAnswered
  | {
      readonly type: 'AnswerCall';
      readonly call: RunningCall;
      readonly outcome: Outcome;
      readonly answeredAt: number;
    }
  | {
      readonly type: 'ParkCall';
      readonly call: RunningCall;
      readonly retry: RetryLater;
    }
  // CallEnded
  | { readonly type: 'CallEnded'; readonly callId: number; readonly then: NextStep }
  // MembersWithdrawn
  | {
      readonly type: 'Withdraw';
      readonly tickets: readonly number[];
      /** The waiting call lost every member: its timer can go. */
      readonly nextDropped: boolean;
    }
  // anything stale (a timer or answer for a call that is gone)
  | { readonly type: 'Ignore' };

export function assertNever(value: never): never {
  throw new Error(`unexpected ${JSON.stringify(value)}`);
}

const spacingOf = (limits: PerItemLimit) => limits.windowMs / limits.limit;

/** Nothing runs, waits or counts in the window: the Item's state can be forgotten. */
export function isIdle(state: ItemCalls, now: number, limits: PerItemLimit): boolean {
  return !state.running && !state.next && inWindow(state.sent, now, limits).length === 0;
}

const mostDays = (members: readonly Member[]) => Math.max(...members.map((m) => m.days));

export function decide(
  state: ItemCalls,
  input: ItemInput,
  now: number,
  limits: PerItemLimit,
): ItemDecision {
  switch (input.type) {
    case 'RequestArrived':
      return decideRequest(state, input.request, input.known, now, limits);
    case 'WindowOpened': {
      const next = state.next;
      if (!next || next.id !== input.callId || state.running) return { type: 'Ignore' };
      return startOrWait(state, next, now, limits);
    }
    case 'CallLeaving': {
      const running = state.running;
      if (!running || running.id !== input.callId || running.leftAt !== undefined) {
        return { type: 'Ignore' };
      }
      // Rule 9.
      const answered = running.members.filter((m) => input.answered.has(m.requestId));
      const remaining = running.members.filter((m) => !input.answered.has(m.requestId));
      if (remaining.length === 0) return { type: 'SkipCall', callId: running.id, answered };
      if (!input.claimed) {
        const call = { id: running.id, members: remaining, days: mostDays(remaining) };
        return { type: 'JoinParkedInstead', call, answered };
      }
      return {
        type: 'MakeCall',
        call: { id: running.id, members: remaining, days: mostDays(remaining), leftAt: now },
        answered,
        sent: [...inWindow(state.sent, now, limits), now],
      };
    }
    case 'PlaidAnswered': {
      const running = state.running;
      if (!running || running.id !== input.callId || running.answered) return { type: 'Ignore' };
      // Rule 11.
      return input.answer.kind === 'outcome'
        ? {
            type: 'AnswerCall',
            call: running,
            outcome: input.answer.outcome,
            answeredAt: input.answer.answeredAt,
          }
        : { type: 'ParkCall', call: running, retry: input.answer };
    }
    case 'CallEnded': {
      const running = state.running;
      if (!running || running.id !== input.callId) return { type: 'Ignore' };
      return { type: 'CallEnded', callId: running.id, then: nextStep(state, running, now, limits) };
    }
    case 'MembersWithdrawn': {
      // Rule 10: members of a call at Plaid stay; they will be answered.
      const withdrawn = (call: Call | undefined) =>
        call ? call.members.filter((m) => input.tickets.has(m.ticket)) : [];
      const fromNext = withdrawn(state.next);
      const fromRunning = state.running?.leftAt === undefined ? withdrawn(state.running) : [];
      const tickets = [...fromNext, ...fromRunning].map((m) => m.ticket);
      if (tickets.length === 0) return { type: 'Ignore' };
      return {
        type: 'Withdraw',
        tickets,
        nextDropped: state.next !== undefined && fromNext.length === state.next.members.length,
      };
    }
    default:
      return assertNever(input);
  }
}

function decideRequest(
  state: ItemCalls,
  request: ArrivingRequest,
  known: KnownFacts,
  now: number,
  limits: PerItemLimit,
): ItemDecision {
  const { ticket } = request;
  if (known.idTaken) return { type: 'RefuseTakenId', ticket }; // rule 2
  if (known.recorded) return { type: 'AnswerAgain', ticket }; // rule 2
  if (known.parked?.includes(request.requestId)) return { type: 'AlreadyParked', ticket };
  if (!Number.isInteger(request.days) || request.days < MIN_DAYS || request.days > MAX_DAYS) {
    return { type: 'Refuse', ticket, days: request.days }; // rule 3
  }
  if (known.needsUser !== undefined) return { type: 'RefuseNeedsUser', ticket, days: request.days };
  const member: Member = {
    ticket,
    requestId: request.requestId,
    days: request.days,
    ...memberTrace(request),
  };
  if (known.parked) return { type: 'JoinParked', member }; // rule 4

  const { running, next, last } = state;
  if (
    running &&
    !running.answered &&
    member.days <= running.days &&
    (running.leftAt === undefined || covers(running.leftAt, request.reachedKafkaAt, now, limits))
  ) {
    return { type: 'JoinRunning', callId: running.id, member }; // rule 5
  }
  if (next) {
    const members = [...next.members, member];
    return { type: 'JoinNext', call: { ...next, members, days: mostDays(members) }, member }; // rule 6
  }
  if (running) return { type: 'JoinNext', call: newCall(state, [member]), member }; // rule 6
  if (
    last &&
    member.days <= last.days &&
    covers(last.leftAt, request.reachedKafkaAt, now, limits)
  ) {
    return { type: 'AnswerFromLast', member, last }; // rule 7
  }
  return startOrWait(state, newCall(state, [member]), now, limits); // rule 8
}

/**
 * Rules 5 and 7: a call that left at `leftAt` answers a request that reached Kafka at
 * `reachedKafkaAt` if it left after that, or less than the per-Item spacing before `now`.
 */
function covers(leftAt: number, reachedKafkaAt: number, now: number, limits: PerItemLimit) {
  return reachedKafkaAt <= leftAt || now - leftAt < spacingOf(limits);
}

function newCall(state: ItemCalls, members: readonly Member[]): Call {
  return { id: state.calls + 1, members, days: mostDays(members) };
}

function startOrWait(state: ItemCalls, call: Call, now: number, limits: PerItemLimit) {
  const until = freeAt(state.sent, now, limits);
  return until <= now
    ? ({ type: 'StartCall', call } as const)
    : ({ type: 'WaitForWindow', call, until } as const);
}

/** Rule 12: what the waiting call does once `ended` is over. */
function nextStep(
  state: ItemCalls,
  ended: RunningCall,
  now: number,
  limits: PerItemLimit,
): NextStep {
  const next = state.next;
  if (!next) return { type: 'Rest' };
  if (ended.answered === 'parked') return { type: 'NextJoinsParked', call: next };
  const last = state.last;
  if (last && now - last.leftAt < spacingOf(limits) && next.days <= last.days) {
    return { type: 'NextAnsweredByLast', call: next, last };
  }
  return startOrWait({ ...state, running: undefined }, next, now, limits);
}

export function evolve(state: ItemCalls, decision: ItemDecision): ItemCalls {
  switch (decision.type) {
    case 'RefuseTakenId':
    case 'AnswerAgain':
    case 'AlreadyParked':
    case 'Refuse':
    case 'RefuseNeedsUser':
    case 'JoinParked':
    case 'AnswerFromLast':
    case 'Ignore':
      return state;
    case 'JoinRunning': {
      const running = state.running!;
      return { ...state, running: { ...running, members: [...running.members, decision.member] } };
    }
    case 'JoinNext':
    case 'WaitForWindow':
      return { ...state, next: decision.call, calls: Math.max(state.calls, decision.call.id) };
    case 'StartCall':
      return {
        ...state,
        running: decision.call,
        next: state.next?.id === decision.call.id ? undefined : state.next,
        calls: Math.max(state.calls, decision.call.id),
      };
    case 'MakeCall':
      return { ...state, running: decision.call, sent: decision.sent };
    case 'SkipCall':
      return { ...state, running: { ...state.running!, members: [], answered: 'not_made' } };
    case 'JoinParkedInstead':
      return { ...state, running: { ...decision.call, answered: 'parked' } };
    case 'AnswerCall': {
      const call = decision.call;
      return {
        ...state,
        running: { ...call, answered: 'outcome' },
        // A call that never left (no access token) answers its members but no later request.
        last:
          call.leftAt === undefined
            ? state.last
            : {
                leftAt: call.leftAt,
                days: call.days,
                leader: call.members[0]!,
                outcome: decision.outcome,
                answeredAt: decision.answeredAt,
              },
      };
    }
    case 'ParkCall':
      return { ...state, running: { ...decision.call, answered: 'parked' } };
    case 'CallEnded':
      return evolveNext({ ...state, running: undefined }, decision.then);
    case 'Withdraw': {
      const gone = new Set(decision.tickets);
      const without = <C extends Call>(call: C): C => {
        const members = call.members.filter((m) => !gone.has(m.ticket));
        return { ...call, members, days: members.length > 0 ? mostDays(members) : call.days };
      };
      const next = state.next && without(state.next);
      return {
        ...state,
        next: next && next.members.length > 0 ? next : undefined,
        running:
          state.running && state.running.leftAt === undefined
            ? without(state.running)
            : state.running,
      };
    }
    default:
      return assertNever(decision);
  }
}

function evolveNext(state: ItemCalls, step: NextStep): ItemCalls {
  switch (step.type) {
    case 'Rest':
      return state;
    case 'NextJoinsParked':
    case 'NextAnsweredByLast':
      return { ...state, next: undefined };
    case 'StartCall':
      return evolve(state, step);
    case 'WaitForWindow':
      return evolve(state, step);
    default:
      return assertNever(step);
  }
}
