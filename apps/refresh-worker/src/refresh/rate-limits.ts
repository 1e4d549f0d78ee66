/**
 * Client-side rate limits, so the worker does not provoke Plaid's 429s: at most `limit` calls in
 * any `windowMs`.
 */
export class CallWindow {
  private readonly times: number[] = [];

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  /** When a call may next be made (now or later), as a timestamp. */
  freeAt(now: number): number {
    this.prune(now);
    return this.times.length < this.limit ? now : this.times[0]! + this.windowMs;
  }

  record(now: number): void {
    this.prune(now);
    this.times.push(now);
  }

  /** Nothing recorded within the window: the entry can be dropped. */
  idle(now: number): boolean {
    this.prune(now);
    return this.times.length === 0;
  }

  private prune(now: number): void {
    while (this.times.length > 0 && now - this.times[0]! >= this.windowMs) this.times.shift();
  }
}

/** The per-client limit, shared by every call of this process: callers queue in order. */
export class ClientRateLimiter {
  private readonly window: CallWindow;
  private tail: Promise<void> = Promise.resolve();

  constructor(limit: number, windowMs: number) {
    this.window = new CallWindow(limit, windowMs);
  }

  /** Resolves when this call may go to Plaid (and counts it). */
  acquire(): Promise<void> {
    const turn = this.tail.then(async () => {
      for (;;) {
        const now = Date.now();
        const at = this.window.freeAt(now);
        if (at <= now) {
          this.window.record(now);
          return;
        }
        await new Promise((r) => setTimeout(r, at - now));
      }
    });
    this.tail = turn;
    return turn;
  }
}
