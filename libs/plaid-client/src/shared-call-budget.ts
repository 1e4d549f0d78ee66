import { queryRows } from '@cashflow/persistence';
import type { DataSource } from 'typeorm';
import { ClientRateLimiter, PlaidCallBudget, type RateLimit } from './rate-limits';

export interface SharedCallBudgetOptions {
  /** The budget's name: one per Plaid endpoint whose limit is counted (e.g. `refresh`). */
  readonly name: string;
  readonly rate: RateLimit;
  /** Told when the database cannot be asked; the take is tried again after `retryMs`. */
  readonly onError?: (error: unknown) => void;
  /** How long to wait before asking again after a database error (default 1 s). */
  readonly retryMs?: number;
}

type TakeAnswer = { turn_bucket: string; granted: number; taken: number; retry_in_ms: number };

/**
 * The per-client limit counted for the whole deployment: every replica takes its turns from one
 * sliding window in PostgreSQL (plaid_take_turns, migration PlaidCallBudget1765000000000), timed
 * by the database's clock. A replica that dies holds nothing: its turns leave the window as any
 * other's do. Within a process, callers queue in order and one request at a time asks for as
 * many turns as are waiting, so a busy worker pays one round trip for many calls.
 *
 * A turn is the window's bucket it was taken in (giving it back takes one off that bucket).
 */
export class SharedCallBudget extends PlaidCallBudget {
  private readonly queue: ((turn: number) => void)[] = [];
  private readonly failures: ((error: Error) => void)[] = [];
  private pumping = false;
  /** What the database said last: turns in the window then, and when. */
  private lastSeen = { taken: 0, at: 0 };
  private closed = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly db: DataSource,
    private readonly options: SharedCallBudgetOptions,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  take(): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the Plaid call budget is closed'));
    const turn = new Promise<number>((resolve, reject) => {
      this.queue.push(resolve);
      this.failures.push(reject);
    });
    void this.pump();
    return turn;
  }

  giveBack(turn: number): void {
    // The window has room again: this process's takes waiting for it ask now, not when the
    // oldest bucket leaves.
    this.lastSeen = { ...this.lastSeen, taken: Math.max(0, this.lastSeen.taken - 1) };
    void this.release(turn).then(() => this.wake?.());
  }

  /** As giveBack, resolving once the turn is out of the window (failures go to onError). */
  async release(turn: number): Promise<void> {
    await this.db
      .query(
        `UPDATE plaid_call_budget SET turns = turns - 1
          WHERE budget = $1 AND bucket = $2 AND turns > 0`,
        [this.options.name, turn],
      )
      .catch((error: unknown) => this.options.onError?.(error));
  }

  /**
   * As far as this process knows: the count the database gave with the last grant, forgotten
   * once a window has passed since. Other replicas may have taken turns meanwhile, so a take may
   * still wait.
   */
  room(now: number): number {
    const taken = now - this.lastSeen.at < this.options.rate.windowMs ? this.lastSeen.taken : 0;
    return Math.max(0, this.options.rate.limit - taken - this.queue.length);
  }

  /** Takes still waiting fail; none is asked for again. */
  close(): void {
    this.closed = true;
    this.wake?.();
  }

  /** One asker at a time: grants go to the waiting takes in order. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        if (this.closed) {
          const error = new Error('the Plaid call budget is closed');
          this.queue.length = 0;
          for (const fail of this.failures.splice(0)) fail(error);
          return;
        }
        const answer = await this.ask(this.queue.length);
        for (let i = 0; i < answer.granted; i += 1) {
          this.failures.shift();
          this.queue.shift()!(answer.bucket);
        }
        if (this.queue.length > 0 && answer.granted === 0) await this.sleep(answer.retryInMs);
      }
    } finally {
      this.pumping = false;
    }
  }

  private async ask(
    wanted: number,
  ): Promise<{ bucket: number; granted: number; retryInMs: number }> {
    try {
      const [answer] = await queryRows<TakeAnswer>(
        this.db,
        'SELECT turn_bucket, granted, taken, retry_in_ms FROM plaid_take_turns($1, $2, $3, $4)',
        [this.options.name, this.options.rate.limit, this.options.rate.windowMs, wanted],
      );
      this.lastSeen = { taken: answer!.taken, at: this.now() };
      return {
        bucket: Number(answer!.turn_bucket),
        granted: answer!.granted,
        retryInMs: answer!.retry_in_ms,
      };
    } catch (error) {
      this.options.onError?.(error);
      return { bucket: 0, granted: 0, retryInMs: this.options.retryMs ?? 1000 };
    }
  }

  /** Waits `ms` (cut short by close), without keeping the process alive. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/**
 * The per-client budget of an app's Plaid calls to one endpoint: the deployment's (shared with
 * every replica through the database) or this process's own, as PLAID_RATE_LIMIT_SCOPE says.
 */
export function callBudget(options: {
  readonly scope: 'deployment' | 'process';
  readonly db: DataSource;
  readonly name: string;
  readonly rate: RateLimit;
  readonly now: () => number;
  readonly onError: (error: unknown) => void;
}): PlaidCallBudget {
  return options.scope === 'deployment'
    ? new SharedCallBudget(options.db, options, options.now)
    : new ClientRateLimiter(options.rate, options.now);
}
