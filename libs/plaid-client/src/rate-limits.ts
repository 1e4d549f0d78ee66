/**
 * Client-side rate limits, so the worker does not provoke Plaid's 429s: at most `limit` calls in
 * any `windowMs`. The rule is one pure function; the per-Item window lives in the Item's state
 * (apps/refresh-worker/src/refresh/item-calls.ts), the per-client one in ClientRateLimiter.
 */
export interface RateLimit {
  readonly limit: number;
  readonly windowMs: number;
}

/** Index of the first send time still inside the window at `now` (times sorted, oldest first). */
function firstInWindow(sent: readonly number[], now: number, rate: RateLimit): number {
  let low = 0;
  let high = sent.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (now - sent[mid]! < rate.windowMs) high = mid;
    else low = mid + 1;
  }
  return low;
}

/** Send times still inside the window at `now` (oldest first). */
export function inWindow(sent: readonly number[], now: number, rate: RateLimit): number[] {
  return sent.slice(firstInWindow(sent, now, rate));
}

/** When a call may next be made (now or later), given the send times so far (oldest first). */
export function freeAt(sent: readonly number[], now: number, rate: RateLimit): number {
  const recent = sent.length - firstInWindow(sent, now, rate);
  return recent < rate.limit ? now : sent[sent.length - rate.limit]! + rate.windowMs;
}

/**
 * Where a Plaid call gets its turn under the per-client limit: this process's own count
 * (ClientRateLimiter) or the deployment's, shared by every replica (SharedCallBudget).
 */
export abstract class PlaidCallBudget {
  /** Resolves with the turn taken when a call may go to Plaid (and counts it). */
  abstract take(): Promise<number>;

  /** A turn taken and not used: it no longer counts against the limit. */
  abstract giveBack(turn: number): void;

  /** Calls that could leave right now without waiting behind anyone (as far as is known). */
  abstract room(now: number): number;

  /** Resolves when a call may go to Plaid (and counts it). */
  async acquire(): Promise<void> {
    await this.take();
  }

  /** Waits for a turn, resolving with the function that gives it back unused. */
  async turn(): Promise<() => void> {
    const turn = await this.take();
    return () => this.giveBack(turn);
  }
}

/** The per-client limit, counted by this process alone: callers queue in order. */
export class ClientRateLimiter extends PlaidCallBudget {
  private sent: number[] = [];
  private waiting = 0;
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly rate: RateLimit,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  take(): Promise<number> {
    this.waiting += 1;
    const turn = this.tail.then(async () => {
      for (;;) {
        const now = this.now();
        const at = freeAt(this.sent, now, this.rate);
        if (at <= now) {
          this.record(now);
          this.waiting -= 1;
          return now;
        }
        await new Promise((r) => setTimeout(r, at - now));
      }
    });
    this.tail = turn.then(() => undefined);
    return turn;
  }

  /** Counts a call sent at `now`, forgetting those that left the window (amortised O(1)). */
  private record(now: number): void {
    const first = firstInWindow(this.sent, now, this.rate);
    if (first > 0) this.sent.splice(0, first);
    this.sent.push(now);
  }

  giveBack(turn: number): void {
    const index = this.sent.lastIndexOf(turn);
    if (index >= 0) this.sent = this.sent.filter((_, i) => i !== index);
  }

  room(now: number): number {
    const recent = this.sent.length - firstInWindow(this.sent, now, this.rate);
    return Math.max(0, this.rate.limit - recent - this.waiting);
  }
}
