import { inSpan, type Logger } from '@cashflow/observability';
import { contextOf, linksTo } from '@cashflow/kafka';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClaimKeeper } from './claim-keeper';
import type { Clock } from './clock';
import { assertNever } from './item-calls';
import type { OutcomePublisher } from './outcome-publisher';
import { outcomeEvent } from './outcomes';
import type { PlaidAttempt } from './plaid-attempt';
import type { PlaidCallBudget } from '@cashflow/plaid-client';
import type { RefreshMetrics } from './refresh-metrics';
import type { Claim, RefreshStore } from './refresh-store';

/** A write still retried this close to the lease's end could land after another worker's claim. */
const LEASE_MARGIN_MS = 2000;

export interface RetryRunnerOptions {
  readonly pollMs: number;
  /** Parked calls under way at once in this process. */
  readonly batch: number;
  /** The per-Item spacing: requests left over by a retry wait this long after it. */
  readonly spacingMs: number;
}

/**
 * Runs the calls in PostgreSQL when they are due, in any worker process: parked calls at the end
 * of their backoff, and calls whose worker died or stopped while they were out (their claim's
 * lease ran out, or was handed back). Claim with a token, make the Plaid attempt, then answer the
 * requests the call carried, or park it again with its backoff.
 *
 * A claim is taken only with a turn of the client's rate limit in hand, so it never waits out
 * its lease behind other calls; just before the call leaves, the claim is renewed, and a claim
 * taken over meanwhile is not called. While the call is out the ClaimKeeper keeps the lease
 * alive. Finishing and rescheduling are conditional on the token: a claim that lost its lease
 * changes nothing.
 */
export class RetryRunner {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly store: RefreshStore,
    private readonly attempt: PlaidAttempt,
    private readonly limiter: PlaidCallBudget,
    private readonly keeper: ClaimKeeper,
    private readonly outcomes: OutcomePublisher,
    private readonly options: RetryRunnerOptions,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics?: RefreshMetrics,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /**
   * Stops claiming and waits up to `graceMs` for calls under way. Claims still held afterwards
   * are the ClaimKeeper's to hand back.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.race([
      Promise.allSettled([...this.running]),
      new Promise((r) => setTimeout(r, graceMs)),
    ]);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  private async tick(): Promise<void> {
    try {
      // One claim per turn of the client's rate limit, taken before the claim: a claimed call
      // leaves at once and never waits out its lease behind other calls.
      while (!this.stopped && this.running.size < this.options.batch) {
        if (this.limiter.room(this.clock.now()) === 0) break;
        const turn = await this.limiter.take();
        const [claim] = await this.store
          .claimDue(1, this.keeper.leaseMs)
          .catch((error: unknown) => {
            this.limiter.giveBack(turn);
            throw error;
          });
        if (!claim) {
          this.limiter.giveBack(turn);
          break;
        }
        if (this.stopped) {
          // Stopped while claiming: hand it straight back.
          this.limiter.giveBack(turn);
          await this.store.release([claim]);
          break;
        }
        const run = this.retry(claim, turn).catch((error: unknown) =>
          this.logger.error(
            { err: error, item_id: claim.itemId },
            'retrying a call failed; its lease will expire',
          ),
        );
        this.running.add(run);
        void run.finally(() => this.running.delete(run));
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'claiming calls failed; will try again');
    }
    this.schedule(this.options.pollMs);
  }

  /** Runs a claimed call with the turn of the client's rate limit taken for it. */
  private async retry(claim: Claim, turn: number): Promise<void> {
    this.keeper.hold(claim);
    try {
      await this.retryHeld(claim, turn);
    } finally {
      this.keeper.drop(claim);
    }
  }

  /** A parked call's later run: a span of its leader's trace, linked to the others it carries. */
  private retryHeld(claim: Claim, turn: number): Promise<void> {
    const [leader, ...others] = claim.members;
    return inSpan(
      'refresh call retry',
      {
        parent: contextOf(leader ?? {}),
        links: linksTo(others),
        attributes: {
          'cashflow.item_id': claim.itemId,
          'cashflow.call.requests': claim.members.length,
          'cashflow.retry.attempts': claim.attempts,
        },
      },
      () => this.retryClaimed(claim, turn),
    );
  }

  private async retryClaimed(claim: Claim, turn: number): Promise<void> {
    let answered = new Set<string>();
    let carried = claim.members;
    let turnHandedOver = false;
    const result = await this.attempt
      .make(claim.itemId, claim.attempts, {
        turn: () => {
          turnHandedOver = true;
          return Promise.resolve(() => this.limiter.giveBack(turn));
        },
        leaving: async () => {
          // Requests answered meanwhile (handed to another worker by a rebalance) need no call.
          answered = new Set(
            (await this.store.recorded(claim.members.map((m) => m.requestId))).keys(),
          );
          carried = claim.members.filter((m) => !answered.has(m.requestId));
          if (carried.length === 0) return undefined;
          const renewing = this.clock.now();
          if (!(await this.store.renew(claim, this.keeper.leaseMs))) {
            this.logger.warn(
              { item_id: claim.itemId },
              'a parked call was taken over; not calling it',
            );
            return undefined;
          }
          this.keeper.hold(claim, renewing);
          return { days: Math.max(...carried.map((m) => m.days)) };
        },
      })
      .finally(() => {
        // Answered before its turn came (no access token, say): the turn was never used.
        if (!turnHandedOver) this.limiter.giveBack(turn);
      });

    switch (result.kind) {
      case 'not_made':
        if (carried.length === 0) {
          await this.persist(claim, () => this.store.finish(claim, [], this.leftoverDue()));
        }
        return;
      case 'retry': {
        const { attempts, lastError, dueAt } = result;
        await inSpan('park refresh call', { attributes: parkedAttributes(result) }, () =>
          this.persist(claim, () =>
            this.store.reschedule(claim, { attempts, lastError, dueAt: new Date(dueAt) }, answered),
          ),
        );
        this.metrics?.retryParked();
        this.logger.info(
          { item_id: claim.itemId, attempts, due_at: new Date(dueAt).toISOString() },
          'refresh parked again',
        );
        return;
      }
      case 'outcome': {
        // Plaid's answer is as of now, however long the write below takes: its report may arrive
        // meanwhile, and the projection pairs reports with acceptances by time.
        const answeredAt = new Date(result.answeredAt);
        const days = Math.max(...carried.map((m) => m.days));
        const events = carried.map((m) =>
          outcomeEvent(claim.itemId, m, carried[0]!, days, result.outcome, answeredAt),
        );
        const recorded = await this.persist(claim, () =>
          this.store.finish(claim, events, this.leftoverDue()),
        );
        if (recorded) {
          await this.outcomes.sendAgain(recorded);
          this.metrics?.published(recorded);
        }
        return;
      }
      default:
        return assertNever(result);
    }
  }

  /** Requests that joined while the call was at Plaid wait for Plaid's per-Item spacing. */
  private leftoverDue(): Date {
    return new Date(this.clock.now() + this.options.spacingMs);
  }

  /**
   * Plaid has answered; writing that down must not be lost to a database blip, or the claim would
   * sit until its lease expires and Plaid would be called again. Retries the write with backoff
   * while the claim's lease has a little time left; after that another worker may claim the
   * call, and the lease expiring is the fallback.
   */
  private async persist<T>(claim: Claim, write: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await write();
      } catch (error) {
        const giveUpAt = this.keeper.expiresAt(claim) - LEASE_MARGIN_MS;
        if (this.stopped || this.clock.now() >= giveUpAt) throw error;
        await sleep(Math.min(250 * 2 ** attempt, 5000));
      }
    }
  }
}

/** What a `park refresh call` span says: attempts so far, when it is due, Plaid's last error. */
export function parkedAttributes(retry: {
  attempts: number;
  dueAt: number;
  lastError: { error_code: string };
}) {
  return {
    'cashflow.retry.attempts': retry.attempts,
    'cashflow.retry.due_at': new Date(retry.dueAt).toISOString(),
    'cashflow.retry.last_error': retry.lastError.error_code,
  };
}
