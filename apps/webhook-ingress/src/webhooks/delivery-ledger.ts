/**
 * Remembers which signed deliveries were handled, so the same delivery seen again (a replay of
 * a captured request, or the same request sent twice) is answered without being published twice.
 *
 * Keyed by the SHA-256 of the verification JWT, never by the body: two genuine webhooks for one
 * Item can have byte-identical bodies. An entry is needed only while its JWT can still pass
 * verification (`iat` + 5 minutes, plus clock skew); after that the JWT is refused as stale.
 *
 * In memory, per process: with several ingress processes behind a load balancer a replay that
 * reaches another process is published again, which consumers absorb (a repeated ReportReady for
 * an Item is a no-op downstream).
 */
export interface Handled<T> {
  readonly result: T;
  /** True when this delivery had been handled (or was being handled) already. */
  readonly duplicate: boolean;
}

interface Entry<T> {
  readonly expiresAt: number;
  /** Pending while the first copy is being handled. */
  outcome: Promise<T>;
}

export class DeliveryLedger<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    /** Most deliveries remembered; beyond it the oldest are forgotten. */
    private readonly capacity: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Runs `handle` for the first copy of a delivery and shares its result with every copy that
   * arrives while it runs or before `expiresAt`. When `keep(result)` is false (the delivery was
   * not stored, so Plaid will retry), the delivery is forgotten and the next copy is handled anew.
   */
  async once(
    deliveryId: string,
    expiresAt: number,
    handle: () => Promise<T>,
    keep: (result: T) => boolean,
  ): Promise<Handled<T>> {
    this.sweep();
    const existing = this.entries.get(deliveryId);
    if (existing) return { result: await existing.outcome, duplicate: true };

    const outcome = handle();
    const entry: Entry<T> = { expiresAt, outcome };
    this.entries.set(deliveryId, entry);
    while (this.entries.size > this.capacity) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
    try {
      const result = await outcome;
      if (!keep(result)) this.forget(deliveryId, entry);
      return { result, duplicate: false };
    } catch (error) {
      this.forget(deliveryId, entry);
      throw error;
    }
  }

  private forget(deliveryId: string, entry: Entry<T>): void {
    if (this.entries.get(deliveryId) === entry) this.entries.delete(deliveryId);
  }

  /** Drops expired entries from the oldest end (entries arrive roughly in expiry order). */
  private sweep(): void {
    const now = this.now();
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt > now) break;
      this.entries.delete(id);
    }
  }
}
