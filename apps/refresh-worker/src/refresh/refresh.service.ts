import { DEFAULT_DAYS_REQUESTED, type RefreshRequested } from '@cashflow/contracts';
import { UnusableRecord, contextOf, linksTo, traceFields } from '@cashflow/kafka';
import { inSpan, type Logger } from '@cashflow/observability';
import { parkedAttributes } from './retry-runner';
import type { Clock } from './clock';
import {
  assertNever,
  decide,
  evolve,
  initialItemCalls,
  isIdle,
  type Call,
  type ItemCalls,
  type ItemDecision,
  type ItemInput,
  type LastCall,
  type Member,
  type NextStep,
  type PerItemLimit,
} from './item-calls';
import type { OutcomePublisher } from './outcome-publisher';
import { stateOf } from '../health/health-store';
import { refusal } from '../health/item-health';
import {
  outcomeEvent,
  memberTrace,
  refusedEvent,
  refusedForHealth,
  workerFailure,
  type Member as Stored,
  type Outcome,
} from './outcomes';
import type { PlaidAttempt } from './plaid-attempt';
import type { PlaidCallBudget } from '@cashflow/plaid-client';
import type { RefreshMetrics } from './refresh-metrics';
import type { ClaimKeeper } from './claim-keeper';
import type { Claim, Known, Recorded, RefreshStore, StartedCall } from './refresh-store';

/** How a RefreshRequested reached this worker. */
export interface Delivery {
  /** When the request reached Kafka: the record's broker timestamp, ms. */
  readonly reachedKafkaAt: number;
  /** Aborted when the request is no longer this worker's to answer (rebalance, shutdown). */
  readonly signal?: AbortSignal;
}

/** The call's claim was taken over while it was out (its lease ran out): its answer is not written. */
export class ClaimLost extends Error {
  constructor(itemId: string) {
    super(`the call of item ${itemId} was claimed by another worker while it was at Plaid`);
    this.name = 'ClaimLost';
  }
}

/** A request let go before its call left: it gets no outcome here and is redelivered elsewhere. */
export class Withdrawn extends Error {
  constructor() {
    super('withdrawn before its Plaid call: its partition moved, or the worker is stopping');
    this.name = 'Withdrawn';
  }
}

interface Ticket {
  resolve(): void;
  reject(error: unknown): void;
  /** Aborted when the request is no longer this worker's (see Delivery). */
  readonly signal: AbortSignal | undefined;
}

/** What admission knows of a request beyond the decider's view. */
interface Arrival {
  readonly request: RefreshRequested;
  readonly known: Known;
}

/**
 * RefreshRequested -> Plaid /cashflow_report/refresh -> RefreshAccepted | RefreshFailed.
 *
 * A thin shell around the per-Item decider (item-calls.ts, where the rules are): it asks
 * PostgreSQL what is known of a request, feeds the decider what happened, and performs its
 * decisions: Plaid attempts, outcomes through the outbox, parked calls, window timers. Each
 * delivery of a request holds a ticket that settles when the request is answered (or parked,
 * or withdrawn); the Kafka consumer commits its offset only then.
 */
export class RefreshService {
  private readonly items = new Map<string, ItemCalls>();
  private readonly admissions = new Map<string, Promise<unknown>>();
  private readonly tickets = new Map<number, Ticket>();
  private readonly timers = new Map<string, { cancel(): void }>();
  /** Claim tokens of this process's calls out at Plaid. */
  private readonly ownCalls = new Set<string>();
  private lastTicket = 0;
  private handling = 0;

  constructor(
    private readonly store: RefreshStore,
    private readonly attempt: PlaidAttempt,
    private readonly limiter: PlaidCallBudget,
    private readonly keeper: ClaimKeeper,
    private readonly outcomes: OutcomePublisher,
    private readonly limits: PerItemLimit,
    /** ITEM_HEALTH_REFUSALS: refuse requests for Items that need their user (rule 3). */
    private readonly refuseNeedsUser: boolean,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics?: RefreshMetrics,
  ) {}

  /** Resolves once the request's outcome is on Kafka, or it is parked with a waiting call. */
  async handle(request: RefreshRequested, delivery: Delivery): Promise<void> {
    this.handling += 1;
    const ticket = ++this.lastTicket;
    const answered = new Promise<void>((resolve, reject) =>
      this.tickets.set(ticket, { resolve, reject, signal: delivery.signal }),
    );
    answered.catch(() => undefined); // awaited below; it may settle before that
    const itemId = request.data.item_id;
    const withdraw = () =>
      this.perform(
        itemId,
        this.apply(itemId, { type: 'MembersWithdrawn', tickets: new Set([ticket]) }),
      );
    delivery.signal?.addEventListener('abort', withdraw, { once: true });
    try {
      await this.inItemOrder(itemId, () => this.admit(request, ticket, delivery));
      await answered;
    } finally {
      delivery.signal?.removeEventListener('abort', withdraw);
      this.tickets.delete(ticket);
      this.handling -= 1;
    }
  }

  /** Requests being handled right now (for metrics). */
  get inFlight(): number {
    return this.handling;
  }

  /** Items this process holds state for (for metrics). */
  get trackedItems(): number {
    return this.items.size;
  }

  /** Drops Items with nothing running, waiting or in their window; call periodically. */
  sweep(): void {
    for (const itemId of this.items.keys()) this.forgetIfIdle(itemId);
  }

  /** Requests of one Item are decided one at a time, in arrival order (rule 1). */
  private async inItemOrder(itemId: string, admit: () => Promise<void>): Promise<void> {
    const previous = this.admissions.get(itemId) ?? Promise.resolve();
    const admitted = previous.then(admit, admit);
    this.admissions.set(itemId, admitted);
    try {
      await admitted;
    } finally {
      if (this.admissions.get(itemId) === admitted) this.admissions.delete(itemId);
    }
  }

  private async admit(request: RefreshRequested, ticket: number, delivery: Delivery) {
    const itemId = request.data.item_id;
    const known = await this.store.known({
      id: request.metadata.id,
      source: request.metadata.source,
      itemId,
    });
    if (delivery.signal?.aborted) {
      this.reject([ticket], new Withdrawn());
      return;
    }
    const arriving = {
      ticket,
      requestId: request.metadata.id,
      // The consume span's context (see KafkaEventsServer): the outcome continues this trace.
      ...traceFields(),
      days: request.data.days_requested ?? DEFAULT_DAYS_REQUESTED,
      // A record stamped in the future (a producer's clock, with CreateTime) counts as now.
      reachedKafkaAt: Number.isFinite(delivery.reachedKafkaAt)
        ? Math.min(delivery.reachedKafkaAt, this.clock.now())
        : this.clock.now(),
    };
    const needsUser =
      this.refuseNeedsUser && request.data.force !== true
        ? refusal(stateOf(itemId, known.health))?.code
        : undefined;
    // The row of this process's own call at Plaid is the running call the decider knows.
    const ownCall = known.parked?.claimToken != null && this.ownCalls.has(known.parked.claimToken);
    let parked = ownCall ? undefined : known.parked?.members.map((m) => m.requestId);
    for (;;) {
      const decision = this.apply(itemId, {
        type: 'RequestArrived',
        request: arriving,
        known: {
          idTaken: known.idTakenBy !== undefined,
          recorded: known.recorded !== undefined,
          ...(parked ? { parked } : {}),
          ...(needsUser !== undefined ? { needsUser } : {}),
        },
      });
      if (decision.type !== 'JoinParked') {
        this.perform(itemId, decision, { request, known });
        return;
      }
      if (await this.store.join(itemId, [stored(decision.member)])) {
        this.resolve([ticket]);
        return;
      }
      if (this.withdrawn(ticket)) {
        this.reject([ticket], new Withdrawn());
        return;
      }
      parked = undefined; // the parked call finished meanwhile: decide again without it
    }
  }

  /** Decides what `input` means for the Item and folds the decision into its state. */
  private apply(itemId: string, input: ItemInput, now = this.clock.now()): ItemDecision {
    const state = this.items.get(itemId) ?? initialItemCalls();
    const decision = decide(state, input, now, this.limits);
    this.items.set(itemId, evolve(state, decision));
    return decision;
  }

  private perform(itemId: string, decision: ItemDecision, arrival?: Arrival): void {
    switch (decision.type) {
      case 'RefuseTakenId': {
        const owner = arrival!.known.idTakenBy!;
        const { request } = arrival!;
        this.reject(
          [decision.ticket],
          new UnusableRecord(
            'REQUEST_ID_CONFLICT',
            'ce_id',
            `ce_id: request id ${request.metadata.id} (${request.metadata.source}, item ${request.data.item_id}) was used first by ${owner.source ?? 'another request'} for item ${owner.itemId}; CloudEvents ids must be unique per request`,
          ),
        );
        return;
      }
      case 'AnswerAgain': {
        const recorded = arrival!.known.recorded!;
        void this.settle([decision.ticket], this.sendRecorded([recorded]));
        return;
      }
      case 'AlreadyParked':
        this.resolve([decision.ticket]);
        return;
      case 'Refuse': {
        const error = workerFailure(
          'INVALID_DAYS_REQUESTED',
          'days_requested must be an integer from 1 to 730',
        );
        const event = refusedEvent(
          arrival!.request,
          decision.days,
          error,
          new Date(this.clock.now()),
          undefined,
          traceFields(),
        );
        void this.settle([decision.ticket], this.outcomes.recordAndSend([event]));
        return;
      }
      case 'RefuseNeedsUser': {
        const { request, known } = arrival!;
        const event = refusedForHealth(
          request,
          decision.days,
          stateOf(itemId, known.health),
          new Date(this.clock.now()),
          traceFields(),
        );
        void this.settle([decision.ticket], this.outcomes.recordAndSend([event]));
        return;
      }
      case 'AnswerFromLast':
        this.answerFromLast(itemId, [decision.member], decision.last);
        return;
      case 'JoinParked': // performed by admit, which may decide again
      case 'JoinRunning':
      case 'JoinNext':
      case 'MakeCall':
      case 'SkipCall':
      case 'JoinParkedInstead':
      case 'AnswerCall':
      case 'ParkCall':
      case 'Ignore':
        return; // nothing to do now, or done where the call runs (run)
      case 'StartCall':
        void this.run(itemId, decision.call);
        return;
      case 'WaitForWindow':
        this.waitForWindow(itemId, decision.call, decision.until);
        return;
      case 'CallEnded':
        this.performNext(itemId, decision.then);
        return;
      case 'Withdraw':
        if (decision.nextDropped) this.cancelTimer(itemId);
        this.reject(decision.tickets, new Withdrawn());
        return;
      default:
        assertNever(decision);
    }
  }

  private performNext(itemId: string, step: NextStep): void {
    switch (step.type) {
      case 'Rest':
        this.forgetIfIdle(itemId);
        return;
      case 'NextJoinsParked':
        void this.joinParked(itemId, step.call);
        return;
      case 'NextAnsweredByLast':
        this.cancelTimer(itemId);
        this.answerFromLast(itemId, step.call.members, step.last);
        return;
      case 'StartCall':
        this.cancelTimer(itemId);
        void this.run(itemId, step.call);
        return;
      case 'WaitForWindow':
        this.waitForWindow(itemId, step.call, step.until);
        return;
      default:
        assertNever(step);
    }
  }

  /**
   * Makes the Item's call and answers everyone in it (rules 9 to 12), in a span of the leader's
   * trace linked to the traces of the others it carries.
   */
  private run(itemId: string, call: Call): Promise<void> {
    const [leader, ...others] = call.members;
    return inSpan(
      'refresh call',
      {
        parent: contextOf(leader ?? {}),
        links: linksTo(others),
        attributes: { 'cashflow.item_id': itemId, 'cashflow.call.requests': call.members.length },
      },
      () => this.runCall(itemId, call),
    );
  }

  private async runCall(itemId: string, call: Call): Promise<void> {
    let claim: Claim | undefined;
    let days = call.days;
    try {
      const result = await this.attempt.make(itemId, 0, {
        turn: () => this.limiter.turn(),
        leaving: async () => {
          const started = await this.startCall(itemId);
          claim = started.claim;
          const recorded = started.answered;
          if (claim) {
            this.keeper.hold(claim);
            this.ownCalls.add(claim.token);
          }
          const leaving = this.apply(itemId, {
            type: 'CallLeaving',
            callId: call.id,
            answered: new Set(recorded.keys()),
            claimed: claim !== undefined,
          });
          if (
            leaving.type !== 'MakeCall' &&
            leaving.type !== 'SkipCall' &&
            leaving.type !== 'JoinParkedInstead'
          ) {
            await this.handBack(claim);
            return undefined;
          }
          this.answerWithRecorded(leaving.answered, recorded);
          if (leaving.type === 'MakeCall') {
            // Plaid is asked what the row promises its members, and what those here want.
            days = Math.max(leaving.call.days, claim!.days);
            return { days };
          }
          if (leaving.type === 'JoinParkedInstead') await this.joinParked(itemId, leaving.call);
          // Everyone here left after the row was written: it is due at once, for the retry runner.
          else await this.handBack(claim);
          return undefined;
        },
      });
      if (result.kind === 'not_made') return;
      const answered = this.apply(itemId, {
        type: 'PlaidAnswered',
        callId: call.id,
        answer: result,
      });
      if (answered.type === 'AnswerCall') await this.answerCall(itemId, answered, claim, days);
      else if (answered.type === 'ParkCall') await this.parkCall(itemId, answered, claim!);
    } catch (error) {
      // Before Plaid's answer was written (the database is away, say): the members' messages are
      // retried; a call out at Plaid is left to its claim's lease.
      const members = this.items.get(itemId)?.running?.members ?? [];
      this.reject(
        members.map((m) => m.ticket),
        error,
      );
    } finally {
      if (claim) {
        this.keeper.drop(claim);
        this.ownCalls.delete(claim.token);
      }
      this.perform(itemId, this.apply(itemId, { type: 'CallEnded', callId: call.id }));
    }
  }

  /**
   * Writes the running call's row, claimed, for its members without an outcome yet (rule 9):
   * one round trip unless some were answered elsewhere meanwhile.
   */
  private async startCall(itemId: string): Promise<StartedCall> {
    const write = (members: readonly Member[]) =>
      members.length === 0
        ? Promise.resolve<StartedCall>({ claim: undefined, answered: new Map() })
        : this.store.startCall(
            {
              itemId,
              members: members.map(stored),
              days: mostDays(members),
              attempts: 0,
              lastError: null,
            },
            this.keeper.leaseMs,
          );
    const members = unique(this.items.get(itemId)?.running?.members ?? []);
    const first = await write(members);
    if (first.claim || first.answered.size === 0) return first;
    const again = await write(members.filter((m) => !first.answered.has(m.requestId)));
    return { claim: again.claim, answered: new Map([...first.answered, ...again.answered]) };
  }

  /** A claimed row whose call is not made here after all: due at once, for any retry runner. */
  private async handBack(claim: Claim | undefined): Promise<void> {
    if (!claim) return;
    this.keeper.drop(claim);
    this.ownCalls.delete(claim.token);
    await this.store.release([claim]);
  }

  /**
   * Plaid answered the call: an outcome for everyone it carried, written with the end of its
   * claim when it had one (rule 11). A claim taken over meanwhile writes nothing: whoever took it
   * over calls again and answers.
   */
  private async answerCall(
    itemId: string,
    decision: Extract<ItemDecision, { type: 'AnswerCall' }>,
    claim: Claim | undefined,
    days: number,
  ): Promise<void> {
    const { call, outcome, answeredAt } = decision;
    if (!claim) {
      await this.answer(itemId, call.members, call.members[0]!, days, outcome, answeredAt);
      return;
    }
    const leader = claim.members[0]!;
    const at = new Date(answeredAt);
    // The row's members (some may have been let go here and handed to another worker, which finds
    // them in the row) and those that joined here while the call was out.
    const events = unique([...claim.members, ...call.members]).map((m) =>
      outcomeEvent(itemId, m, leader, days, outcome, at),
    );
    const leftoverDue = new Date(answeredAt + this.limits.windowMs / this.limits.limit);
    const tickets = call.members.map((m) => m.ticket);
    const written = this.store.finish(claim, events, leftoverDue).then(async (recorded) => {
      if (!recorded) throw new ClaimLost(itemId);
      await this.outcomes.sendAgain(recorded);
      this.metrics?.published(recorded);
    });
    await this.settle(tickets, written);
  }

  /** Outcomes for `members` of a call made for `leader`; resolves once Kafka has them. */
  private async answer(
    itemId: string,
    members: readonly Member[],
    leader: Member,
    days: number,
    outcome: Outcome,
    answeredAt: number,
  ): Promise<void> {
    const at = new Date(answeredAt);
    const events = unique(members).map((m) => outcomeEvent(itemId, m, leader, days, outcome, at));
    await this.settle(
      members.map((m) => m.ticket),
      this.outcomes.recordAndSend(events),
    );
  }

  private answerFromLast(itemId: string, members: readonly Member[], last: LastCall): void {
    void this.answer(itemId, members, last.leader, last.days, last.outcome, last.answeredAt);
  }

  /** Members answered elsewhere meanwhile get their recorded outcome (rule 9). */
  private answerWithRecorded(
    members: readonly Member[],
    recorded: ReadonlyMap<string, Recorded>,
  ): void {
    for (const m of members) {
      void this.settle([m.ticket], this.sendRecorded([recorded.get(m.requestId)!]));
    }
  }

  /**
   * Plaid's answer is worth retrying: the claimed row becomes a parked call for the retry runner
   * (rule 11), with the requests that joined here and without those answered elsewhere meanwhile.
   */
  private async parkCall(
    itemId: string,
    decision: Extract<ItemDecision, { type: 'ParkCall' }>,
    claim: Claim,
  ): Promise<void> {
    const { call, retry } = decision;
    const recorded = await this.store.recorded(
      unique([...claim.members, ...call.members]).map((m) => m.requestId),
    );
    this.answerWithRecorded(
      call.members.filter((m) => recorded.has(m.requestId)),
      recorded,
    );
    const waiting = call.members.filter((m) => !recorded.has(m.requestId));
    const parking = inSpan('park refresh call', { attributes: parkedAttributes(retry) }, () =>
      this.store
        .reschedule(
          claim,
          { attempts: retry.attempts, lastError: retry.lastError, dueAt: new Date(retry.dueAt) },
          new Set(recorded.keys()),
          unique(waiting).map(stored),
        )
        .then((parked) => {
          if (!parked) throw new ClaimLost(itemId);
        }),
    );
    await this.settle(
      waiting.map((m) => m.ticket),
      parking,
    );
    this.metrics?.retryParked();
    this.logger.info(
      {
        item_id: itemId,
        attempts: retry.attempts,
        due_at: new Date(retry.dueAt).toISOString(),
        error_code: retry.lastError.error_code,
      },
      'refresh parked for retry',
    );
  }

  /** The waiting call joins the call just parked; if that is gone already, it starts over. */
  private async joinParked(itemId: string, call: Call): Promise<void> {
    const tickets = call.members.map((m) => m.ticket);
    try {
      if (await this.store.join(itemId, unique(call.members).map(stored))) {
        this.resolve(tickets);
        return;
      }
    } catch (error) {
      this.reject(tickets, error);
      return;
    }
    for (const m of call.members) {
      if (this.withdrawn(m.ticket)) {
        this.reject([m.ticket], new Withdrawn());
        continue;
      }
      const decision = this.apply(itemId, {
        type: 'RequestArrived',
        request: { ...m, reachedKafkaAt: this.clock.now() },
        known: { recorded: false },
      });
      this.perform(itemId, decision);
    }
  }

  private waitForWindow(itemId: string, call: Call, until: number): void {
    this.cancelTimer(itemId);
    const timer = this.clock.after(until - this.clock.now(), () => {
      this.timers.delete(itemId);
      this.perform(itemId, this.apply(itemId, { type: 'WindowOpened', callId: call.id }));
    });
    this.timers.set(itemId, timer);
  }

  private cancelTimer(itemId: string): void {
    this.timers.get(itemId)?.cancel();
    this.timers.delete(itemId);
  }

  private forgetIfIdle(itemId: string): void {
    const state = this.items.get(itemId);
    if (state && !this.timers.has(itemId) && isIdle(state, this.clock.now(), this.limits)) {
      this.items.delete(itemId);
    }
  }

  private sendRecorded(recorded: readonly Recorded[]): Promise<void> {
    const unpublished = recorded.filter((r) => !r.published).map((r) => r.event);
    return this.outcomes.sendAgain(unpublished);
  }

  /** Let go while out of the decider's sight (a store call under way): not to be decided again. */
  private withdrawn(ticket: number): boolean {
    return this.tickets.get(ticket)?.signal?.aborted === true;
  }

  /** Settles the tickets once `outcome` settles, as it does; never rejects. */
  private settle(tickets: readonly number[], outcome: Promise<void>): Promise<void> {
    return outcome.then(
      () => this.resolve(tickets),
      (error: unknown) => this.reject(tickets, error),
    );
  }

  private resolve(tickets: readonly number[]): void {
    tickets.forEach((t) => this.tickets.get(t)?.resolve());
  }

  private reject(tickets: readonly number[], error: unknown): void {
    tickets.forEach((t) => this.tickets.get(t)?.reject(error));
  }
}

/** A member as PostgreSQL keeps it: the ticket is this process's alone. */
const stored = (m: Stored): Stored => ({ requestId: m.requestId, days: m.days, ...memberTrace(m) });

const mostDays = (members: readonly Stored[]) => Math.max(...members.map((m) => m.days));

/** One member per request: two deliveries of one request in a call get one outcome. */
function unique<M extends Stored>(members: readonly M[]): M[] {
  const seen = new Set<string>();
  return members.filter((m) => !seen.has(m.requestId) && seen.add(m.requestId));
}
