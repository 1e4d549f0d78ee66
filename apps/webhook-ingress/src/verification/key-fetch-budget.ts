const MINUTE_MS = 60_000;

export interface KeyFetchBudgetOptions {
  /** Fetches allowed per minute, whoever asks: what Plaid's key endpoint sees at most. */
  readonly fetchesPerMinute: number;
  /** Kids seen once that are remembered (oldest forgotten first). */
  readonly maxSeenOnce?: number;
  /** Kids seen repeatedly that are remembered (fewest presentations forgotten first). */
  readonly maxRepeated?: number;
}

/**
 * Decides which unknown key ids (kids) may cost a fetch from Plaid, so that a flood of made-up
 * kids cannot starve the one Plaid really rotated to.
 *
 * Anyone can put any kid in a JWT header, and only Plaid can say whether it exists; so fetches
 * are budgeted (fetchesPerMinute). Spent first come, first served, 30 made-up kids a minute keep
 * the budget empty and Plaid's genuinely new kid gets 503 for as long as the flood lasts. What
 * sets the genuine kid apart is that it keeps coming: after a rotation every webhook Plaid sends
 * carries it, and Plaid retries each one. So:
 *
 * 1. Half the budget (rounded down) is open: any kid, on its first presentation too.
 * 2. The other half is reserved for the most presented kid: one presented at least twice, and
 *    at least as often as any other kid still waiting. A made-up kid that wins it is fetched
 *    once, found unknown and remembered, and leaves the race; to win it again an attacker has to
 *    present a new kid more often than Plaid presents the genuine one.
 * 3. A kid we hold a key for, cached past its TTL, may use any of the budget (it is asked about
 *    again only to notice an expiry; if the budget is spent, the cached key is used meanwhile).
 *
 * Presentations are counted per process, in bounded memory: a flood of kids seen once pushes out
 * the oldest of them, never the kids seen repeatedly.
 */
export class KeyFetchBudget {
  private readonly open: SlidingMinute;
  private readonly reserved: SlidingMinute;
  /** Kids presented once, oldest first. */
  private readonly seenOnce = new Set<string>();
  /** Kids presented two or more times: their presentation count. */
  private readonly repeated = new Map<string, number>();

  constructor(private readonly options: KeyFetchBudgetOptions) {
    const reserved = Math.ceil(options.fetchesPerMinute / 2);
    this.open = new SlidingMinute(options.fetchesPerMinute - reserved);
    this.reserved = new SlidingMinute(reserved);
  }

  /** A kid we hold no key for is presented: true when it may be fetched now (the fetch counted). */
  unknownKid(kid: string, now: number): boolean {
    const presentations = this.present(kid);
    if (this.open.take(now)) return true;
    return (
      presentations >= 2 && this.isMostPresented(kid, presentations) && this.reserved.take(now)
    );
  }

  /** A kid whose cached key is past its TTL: true when it may be fetched now (rule 3). */
  staleKid(now: number): boolean {
    return this.open.take(now) || this.reserved.take(now);
  }

  /** Plaid answered about `kid` (found or not): it no longer competes for fetches. */
  settled(kid: string): void {
    this.seenOnce.delete(kid);
    this.repeated.delete(kid);
  }

  private present(kid: string): number {
    const count = this.repeated.get(kid);
    if (count !== undefined) {
      this.repeated.set(kid, count + 1);
      return count + 1;
    }
    if (this.seenOnce.delete(kid)) {
      this.repeated.set(kid, 2);
      this.forgetLeastPresented();
      return 2;
    }
    this.seenOnce.add(kid);
    if (this.seenOnce.size > (this.options.maxSeenOnce ?? 10_000)) {
      this.seenOnce.delete(this.seenOnce.values().next().value as string);
    }
    return 1;
  }

  private isMostPresented(kid: string, presentations: number): boolean {
    for (const [other, count] of this.repeated) {
      if (other !== kid && count > presentations) return false;
    }
    return true;
  }

  private forgetLeastPresented(): void {
    if (this.repeated.size <= (this.options.maxRepeated ?? 1_000)) return;
    let least: string | undefined;
    let leastCount = Number.POSITIVE_INFINITY;
    for (const [kid, count] of this.repeated) {
      if (count < leastCount) [least, leastCount] = [kid, count];
    }
    if (least !== undefined) this.repeated.delete(least);
  }
}

/** At most `limit` takes in any minute. */
class SlidingMinute {
  private times: number[] = [];

  constructor(private readonly limit: number) {}

  take(now: number): boolean {
    this.times = this.times.filter((t) => now - t < MINUTE_MS);
    if (this.times.length >= this.limit) return false;
    this.times.push(now);
    return true;
  }
}
