/**
 * Sliding-window limit: at most `limit` admitted calls per key within any `windowMs`. Rejected
 * calls do not use up the window.
 */
export class SlidingWindowLimiter {
  private readonly admitted = new Map<string, number[]>();

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  /** Whether a call for `key` at `now` would be admitted, without admitting it. */
  allows(key: string, now: number): boolean {
    return this.recent(key, now).length < this.limit;
  }

  admit(key: string, now: number): void {
    const recent = this.recent(key, now);
    recent.push(now);
    this.admitted.set(key, recent);
  }

  private recent(key: string, now: number): number[] {
    return (this.admitted.get(key) ?? []).filter((t) => now - t < this.windowMs);
  }
}
