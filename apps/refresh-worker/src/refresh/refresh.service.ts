import type { RefreshRequested } from '@cashflow/contracts';
import type { Logger } from '@cashflow/observability';
import type { PlaidClient } from '@cashflow/plaid-client';
import type { TokenVault } from '@cashflow/access-tokens';
import {
  backoffDelay,
  backoffFor,
  classifyPlaidError,
  type BackoffPolicy,
} from './classify-plaid-error';
import type { OutcomePublisher } from './outcome-publisher';
import {
  checkDaysRequested,
  failureOf,
  outcomeEvent,
  refusedEvent,
  workerFailure,
  type Member,
  type Outcome,
} from './outcomes';
import { CallWindow, ClientRateLimiter } from './rate-limits';
import type { RefreshMetrics } from './refresh-metrics';
import type { RefreshStore, WaitingCall } from './refresh-store';

export interface RefreshSettings {
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
  readonly perItem: { readonly limit: number; readonly windowMs: number };
  readonly perClient: { readonly limit: number; readonly windowMs: number };
}

/** One Plaid call and every request it answers: the first to ask leads, later ones follow. */
interface Call {
  days: number;
  readonly leader: Member;
  readonly followers: Member[];
  /** Plaid has answered: the members are fixed, later requests wait for the next call. */
  closed: boolean;
  readonly settled: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

/** What this process knows of one Item between requests. */
interface ItemCalls {
  readonly window: CallWindow;
  running?: Call;
  /** Requests that cannot share the running call (they ask for more days) or wait for the window. */
  next?: Call;
  nextTimer?: NodeJS.Timeout;
  /** The latest finished call: it answers requests arriving within the per-Item spacing. */
  last?: {
    readonly at: number;
    readonly days: number;
    readonly leader: Member;
    readonly outcome: Outcome;
    /** When Plaid answered it: the accepted_at / failed_at of everyone it answers. */
    readonly answeredAt: Date;
  };
}

interface Admitted {
  readonly completion: Promise<void>;
}
const admitted = (completion: Promise<void>): Admitted => ({ completion });

function newCall(leader: Member): Call {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const settled = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A call may settle before anyone awaits it; its failure is reported to each awaiting request.
  settled.catch(() => undefined);
  return { days: leader.days, leader, followers: [], closed: false, settled, resolve, reject };
}

/**
 * RefreshRequested -> Plaid /cashflow_report/refresh -> RefreshAccepted | RefreshFailed.
 *
 * Requests of one Item are admitted in arrival order and never call Plaid concurrently: a
 * request arriving while the Item's call runs (or while the per-Item window is full) joins a call
 * instead of making one, and still gets its own outcome saying whose call answered it. A failed
 * call that is worth retrying is parked in PostgreSQL with its backoff; RetryRunner takes it from
 * there, so a wait of hours blocks nothing and survives restarts.
 */
export class RefreshService {
  private readonly items = new Map<string, ItemCalls>();
  private readonly admissions = new Map<string, Promise<unknown>>();
  private handling = 0;
  readonly clientLimiter: ClientRateLimiter;

  constructor(
    private readonly store: RefreshStore,
    private readonly vault: TokenVault,
    private readonly plaid: PlaidClient,
    private readonly outcomes: OutcomePublisher,
    private readonly settings: RefreshSettings,
    private readonly logger: Logger,
    private readonly metrics?: RefreshMetrics,
    private readonly random: () => number = Math.random,
  ) {
    this.clientLimiter = new ClientRateLimiter(
      settings.perClient.limit,
      settings.perClient.windowMs,
    );
  }

  /** Resolves once the request's outcome is published, or it is parked with a waiting call. */
  async handle(request: RefreshRequested): Promise<void> {
    this.handling += 1;
    try {
      await this.handleInOrder(request);
    } finally {
      this.handling -= 1;
    }
  }

  /** Requests being handled right now (for metrics). */
  get inFlight(): number {
    return this.handling;
  }

  private async handleInOrder(request: RefreshRequested): Promise<void> {
    const itemId = request.data.item_id;
    const previous = this.admissions.get(itemId) ?? Promise.resolve();
    const admitted = previous.then(
      () => this.admit(request),
      () => this.admit(request),
    );
    this.admissions.set(itemId, admitted);
    try {
      const { completion } = await admitted;
      await completion;
    } finally {
      if (this.admissions.get(itemId) === admitted) this.admissions.delete(itemId);
    }
  }

  /**
   * Decides what to do with a request. Returns the promise of its completion wrapped in an
   * object: an async function returning a bare promise would wait for it, and admission
   * (ordered per Item) must not wait for completion.
   */
  private async admit(request: RefreshRequested): Promise<Admitted> {
    const itemId = request.data.item_id;
    const requestId = request.metadata.id;
    const known = await this.store.known(requestId, itemId);
    // Answered before: no second Plaid call. Publish again only if Kafka may not have it.
    if (known.outcome) {
      return admitted(
        known.published ? Promise.resolve() : this.outcomes.send([known.outcome], true),
      );
    }
    const waiting = known.waiting;
    if (waiting && [waiting.leader, ...waiting.followers].some((m) => m.requestId === requestId)) {
      return admitted(Promise.resolve());
    }

    const days = checkDaysRequested(request);
    if (!days.ok) {
      const error = workerFailure(
        'INVALID_DAYS_REQUESTED',
        'days_requested must be an integer from 1 to 730',
      );
      return admitted(this.outcomes.send([refusedEvent(request, days.asked, error, new Date())]));
    }
    const member: Member = { requestId, days: days.days };

    if (waiting && (await this.store.join(itemId, [member]))) return admitted(Promise.resolve());

    const item = this.itemCalls(itemId);
    if (item.running) {
      if (!item.running.closed && member.days <= item.running.days) {
        item.running.followers.push(member);
        return admitted(item.running.settled);
      }
      return admitted(this.joinNext(itemId, item, member));
    }
    if (item.next) return admitted(this.joinNext(itemId, item, member));

    const now = Date.now();
    const last = item.last;
    const requestedAt = Date.parse(request.metadata.time);
    const refreshedSinceAsked = last !== undefined && requestedAt <= last.at;
    if (
      last &&
      (refreshedSinceAsked || now - last.at < this.spacingMs) &&
      member.days <= last.days
    ) {
      // A call for at least these days was made after this request was sent, or moments ago:
      // it answers this request too, as of when Plaid answered it (its report may be in already,
      // and the projection pairs reports with acceptances by time).
      const event = outcomeEvent(
        itemId,
        member,
        last.leader,
        last.days,
        last.outcome,
        last.answeredAt,
      );
      return admitted(this.outcomes.send([event]));
    }
    if (item.window.freeAt(now) <= now) {
      const call = newCall(member);
      void this.run(itemId, item, call);
      return admitted(call.settled);
    }
    return admitted(this.joinNext(itemId, item, member));
  }

  private joinNext(itemId: string, item: ItemCalls, member: Member): Promise<void> {
    if (item.next) {
      item.next.followers.push(member);
      item.next.days = Math.max(item.next.days, member.days);
    } else {
      item.next = newCall(member);
      if (!item.running) this.scheduleNext(itemId, item);
    }
    return item.next.settled;
  }

  /** Starts the waiting call once nothing runs and the per-Item window has room. */
  private scheduleNext(itemId: string, item: ItemCalls): void {
    const next = item.next;
    if (!next || item.running || item.nextTimer) return;
    const last = item.last;
    if (last && Date.now() - last.at < this.spacingMs && next.days <= last.days) {
      // They arrived while the latest call was being answered: that call answers them too.
      item.next = undefined;
      const events = [next.leader, ...next.followers].map((m) =>
        outcomeEvent(itemId, m, last.leader, last.days, last.outcome, last.answeredAt),
      );
      this.outcomes.send(events).then(
        () => next.resolve(),
        (error: unknown) => next.reject(error),
      );
      return;
    }
    const delay = Math.max(0, item.window.freeAt(Date.now()) - Date.now());
    item.nextTimer = setTimeout(() => {
      item.nextTimer = undefined;
      if (item.running || item.next !== next) return;
      item.next = undefined;
      void this.run(itemId, item, next);
    }, delay);
    // Timers of waiting calls must not keep a stopping process alive.
    item.nextTimer.unref?.();
  }

  private itemCalls(itemId: string): ItemCalls {
    let item = this.items.get(itemId);
    if (!item) {
      item = {
        window: new CallWindow(this.settings.perItem.limit, this.settings.perItem.windowMs),
      };
      this.items.set(itemId, item);
    }
    return item;
  }

  /**
   * The spacing of one Item's calls at the per-Item limit (window / limit): a request arriving
   * within it after a call shares that call instead of making another.
   */
  private get spacingMs(): number {
    return this.settings.perItem.windowMs / this.settings.perItem.limit;
  }

  /** Makes the Item's call and answers everyone in it. */
  private async run(itemId: string, item: ItemCalls, call: Call): Promise<void> {
    item.running = call;
    // When the call leaves for Plaid (after the client limiter), not when it was admitted: that is
    // what Plaid's per-Item limit counts, and what "refreshed after this request" compares with.
    let at = Date.now();
    const sent = (sentAt: number) => {
      at = sentAt;
      item.window.record(sentAt);
    };
    let parked = false;
    try {
      const result = await this.callPlaid(itemId, call.days, 0, sent);
      // From here the members are fixed; a request arriving now waits in item.next.
      call.closed = true;
      const members = [call.leader, ...call.followers];
      if (result.kind === 'park') {
        parked = true;
        const { attempts, lastError, dueAt } = result;
        await this.store.park({
          itemId,
          leader: call.leader,
          followers: call.followers,
          days: call.days,
          attempts,
          lastError,
          dueAt,
        });
        this.logger.info(
          {
            item_id: itemId,
            attempts,
            due_at: dueAt.toISOString(),
            error_code: lastError.error_code,
          },
          'refresh parked for retry',
        );
      } else {
        const now = new Date();
        item.last = {
          at,
          days: call.days,
          leader: call.leader,
          outcome: result.outcome,
          answeredAt: now,
        };
        await this.outcomes.send(
          members.map((m) => outcomeEvent(itemId, m, call.leader, call.days, result.outcome, now)),
        );
      }
      call.resolve();
    } catch (error) {
      call.reject(error);
    } finally {
      item.running = undefined;
      if (item.next && parked) await this.joinParked(itemId, item);
      else if (item.next) this.scheduleNext(itemId, item);
      else this.forgetIfIdle(itemId, item);
    }
  }

  /** Requests that waited behind a call that got parked join the parked call. */
  private async joinParked(itemId: string, item: ItemCalls): Promise<void> {
    const next = item.next!;
    item.next = undefined;
    clearTimeout(item.nextTimer);
    item.nextTimer = undefined;
    try {
      if (await this.store.join(itemId, [next.leader, ...next.followers])) next.resolve();
      else {
        item.next = next;
        this.scheduleNext(itemId, item);
      }
    } catch (error) {
      next.reject(error);
    }
  }

  private forgetIfIdle(itemId: string, item: ItemCalls): void {
    if (!item.running && !item.next && item.window.idle(Date.now())) this.items.delete(itemId);
  }

  /** Drops Items with nothing running, waiting or in their window; call periodically. */
  sweep(): void {
    for (const [itemId, item] of this.items) this.forgetIfIdle(itemId, item);
  }

  /** Items this process holds state for (for metrics). */
  get trackedItems(): number {
    return this.items.size;
  }

  /**
   * One Plaid call for the Item. `attemptsBefore` counts earlier calls of the same request.
   * Returns the outcome, or when to try again.
   */
  async callPlaid(
    itemId: string,
    days: number,
    attemptsBefore: number,
    onSend?: (sentAt: number) => void,
  ): Promise<
    | { kind: 'outcome'; outcome: Outcome }
    | { kind: 'park'; attempts: number; lastError: WaitingCall['lastError']; dueAt: Date }
  > {
    const token = await this.vault.reveal(itemId);
    if (!token) {
      const error = workerFailure(
        'UNKNOWN_ITEM',
        `no access token is registered for item ${itemId}`,
      );
      return {
        kind: 'outcome',
        outcome: { kind: 'failed', error, retryable: false, attempts: attemptsBefore },
      };
    }
    await this.clientLimiter.acquire();
    onSend?.(Date.now());
    const timed = this.metrics?.plaidCall();
    const result = await this.plaid.refreshCashflowReport(token, days);
    timed?.(
      result.ok
        ? 'accepted'
        : result.error.kind === 'plaid'
          ? result.error.error.error_code
          : result.error.kind,
    );
    const attempts = attemptsBefore + 1;
    if (result.ok) {
      return {
        kind: 'outcome',
        outcome: { kind: 'accepted', plaidRequestId: result.value.request_id, attempts },
      };
    }
    const classification = classifyPlaidError(result.error);
    const failure = failureOf(result.error);
    if (classification.retry !== 'never' && attempts < this.settings.maxAttempts) {
      const delay = backoffDelay(
        backoffFor(classification.retry, this.settings.backoff),
        attempts,
        this.random,
      );
      return { kind: 'park', attempts, lastError: failure, dueAt: new Date(Date.now() + delay) };
    }
    return {
      kind: 'outcome',
      outcome: { kind: 'failed', error: failure, retryable: classification.retryable, attempts },
    };
  }
}
