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

type TakeAnswer = { turn: string | null; retry_in_ms: number; taken: number };

/**
 * The per-client limit counted for the whole deployment: every replica takes its turns from one
 * sliding window in PostgreSQL (plaid_take_turn, migration PlaidCallBudget1765000000000), timed
 * by the database's clock. A replica that dies holds nothing: its turns leave the window as any
 * other's do. Within a process, callers queue in order, and only the first of the queue asks the
 * database, once a turn is due.
 *
 * A turn costs one round trip to PostgreSQL; Plaid's per-client limits (hundreds of calls a
 * minute) are far below what that can serve.
 */
export class SharedCallBudget extends PlaidCallBudget {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;
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
    this.waiting += 1;
    const turn = this.tail.then(async () => {
      try {
        for (;;) {
          if (this.closed) throw new Error('the Plaid call budget is closed');
          const answer = await this.ask();
          if (answer.turn !== null) return Number(answer.turn);
          await this.sleep(answer.retryInMs);
        }
      } finally {
        this.waiting -= 1;
      }
    });
    this.tail = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  giveBack(turn: number): void {
    void this.release(turn);
  }

  /** As giveBack, resolving once the turn is out of the window (failures go to onError). */
  async release(turn: number): Promise<void> {
    await this.db
      .query('DELETE FROM plaid_call_turns WHERE id = $1', [turn])
      .catch((error: unknown) => this.options.onError?.(error));
  }

  /** Takes still waiting fail; none is asked for again. */
  close(): void {
    this.closed = true;
    this.wake?.();
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

  /**
   * As far as this process knows: the count the database gave with the last turn, forgotten
   * once a window has passed since (then the next take asks). Other replicas may have taken
   * turns meanwhile, so a take may still wait.
   */
  room(now: number): number {
    const taken = now - this.lastSeen.at < this.options.rate.windowMs ? this.lastSeen.taken : 0;
    return Math.max(0, this.options.rate.limit - taken - this.waiting);
  }

  private async ask(): Promise<{ turn: string | null; retryInMs: number }> {
    try {
      const [answer] = await queryRows<TakeAnswer>(
        this.db,
        'SELECT turn, retry_in_ms, taken FROM plaid_take_turn($1, $2, $3)',
        [this.options.name, this.options.rate.limit, this.options.rate.windowMs],
      );
      this.lastSeen = { taken: answer!.taken, at: this.now() };
      return { turn: answer!.turn, retryInMs: answer!.retry_in_ms };
    } catch (error) {
      this.options.onError?.(error);
      return { turn: null, retryInMs: this.options.retryMs ?? 1000 };
    }
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
