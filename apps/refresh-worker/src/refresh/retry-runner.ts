import type { Logger } from '@cashflow/observability';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OutcomePublisher } from './outcome-publisher';
import { outcomeEvent, type Outcome } from './outcomes';
import type { RefreshService } from './refresh.service';
import type { RefreshStore, WaitingCall } from './refresh-store';

export interface RetryRunnerOptions {
  readonly pollMs: number;
  /** How long a claimed call is ours before another worker may take it over. */
  readonly leaseMs: number;
  readonly batch: number;
}

/**
 * Runs parked calls when they are due, from PostgreSQL, in any worker process: claim with a
 * lease, call Plaid, then answer every request in the call, or park it again with its backoff.
 */
export class RetryRunner {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly running = new Set<Promise<void>>();
  /** Items whose parked call this process has claimed and not yet finished. */
  private readonly claimed = new Set<string>();

  constructor(
    private readonly store: RefreshStore,
    private readonly refresh: RefreshService,
    private readonly outcomes: OutcomePublisher,
    private readonly options: RetryRunnerOptions,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /**
   * Stops claiming; waits up to `graceMs` for calls under way, then releases the claims still
   * held so another worker takes them at once rather than after the lease (a call still at
   * Plaid may then be made twice; only the outcome recorded first is published).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.race([
      Promise.allSettled([...this.running]),
      new Promise((r) => setTimeout(r, graceMs)),
    ]);
    await this.store
      .release([...this.claimed])
      .catch((error: unknown) =>
        this.logger.warn(
          { err: error },
          'releasing claimed retries failed; their leases will expire',
        ),
      );
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  private async tick(): Promise<void> {
    try {
      const due = await this.store.claimDue(this.options.batch, this.options.leaseMs);
      for (const call of due) this.claimed.add(call.itemId);
      if (this.stopped) {
        // Stopped while claiming: hand them straight back.
        await this.store.release(due.map((c) => c.itemId));
        due.forEach((c) => this.claimed.delete(c.itemId));
        return;
      }
      for (const call of due) {
        const run = this.retry(call).catch((error: unknown) =>
          this.logger.error(
            { err: error, item_id: call.itemId },
            'retrying a parked refresh failed; its lease will expire',
          ),
        );
        this.running.add(run);
        void run.finally(() => {
          this.running.delete(run);
          this.claimed.delete(call.itemId);
        });
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'claiming parked refreshes failed; will try again');
    }
    this.schedule(this.options.pollMs);
  }

  /**
   * Plaid has answered; writing that down must not be lost to a database blip, or the claim would
   * sit until its lease expires and Plaid would be called again. Retries the write with backoff
   * for up to half the lease; after that the lease expiring is the fallback.
   */
  private async persist<T>(write: () => Promise<T>): Promise<T> {
    const giveUpAt = Date.now() + this.options.leaseMs / 2;
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await write();
      } catch (error) {
        if (this.stopped || Date.now() >= giveUpAt) throw error;
        await sleep(Math.min(250 * 2 ** attempt, 5000));
      }
    }
  }

  private async retry(call: WaitingCall): Promise<void> {
    const result = await this.refresh.callPlaid(call.itemId, call.days, call.attempts);
    // Plaid's answer is as of now, however long the write below takes: its report may arrive
    // meanwhile, and the projection pairs reports with acceptances by time.
    const answeredAt = new Date();
    if (result.kind === 'park') {
      await this.persist(() =>
        this.store.reschedule(call.itemId, result.attempts, result.lastError, result.dueAt),
      );
      this.logger.info(
        { item_id: call.itemId, attempts: result.attempts, due_at: result.dueAt.toISOString() },
        'refresh parked again',
      );
      return;
    }
    const events = await this.persist(() =>
      this.store.finish(call.itemId, (current) => answerAll(current, result.outcome, answeredAt)),
    );
    await this.outcomes.send(events, true);
  }
}

/** Outcomes for the leader and every follower of a waiting call, including late joiners. */
function answerAll(call: WaitingCall, outcome: Outcome, answeredAt: Date) {
  return [call.leader, ...call.followers].map((m) =>
    outcomeEvent(call.itemId, m, call.leader, call.days, outcome, answeredAt),
  );
}
