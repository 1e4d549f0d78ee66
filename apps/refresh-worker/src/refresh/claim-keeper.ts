import type { Logger } from '@cashflow/observability';
import type { Clock } from './clock';
import type { Claim, RefreshStore } from './refresh-store';

/**
 * Keeps this process's claims on calls out at Plaid alive: every third of the lease, one UPDATE
 * extends all of them. The lease is short, so the calls of a process that dies (kill -9) are
 * claimed again within a lease, not after Plaid's longest response time; a claim found taken
 * over is dropped (its call's answer will not be written).
 */
export class ClaimKeeper {
  private readonly held = new Map<string, { claim: Claim; until: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: RefreshStore,
    readonly leaseMs: number,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.renewAll(), this.leaseMs / 3);
    this.timer.unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Keeps `claim` alive from now on; `since` is when it was last taken or extended. */
  hold(claim: Claim, since: number = this.clock.now()): void {
    this.held.set(claim.token, { claim, until: since + this.leaseMs });
  }

  drop(claim: Claim): void {
    this.held.delete(claim.token);
  }

  /**
   * When the claim's lease runs out unless extended again: a write for it must land before then,
   * or another worker may have called Plaid for the same requests.
   */
  expiresAt(claim: Claim): number {
    return this.held.get(claim.token)?.until ?? 0;
  }

  /** Hands back every claim still held (the process is stopping): due again at once, elsewhere. */
  async releaseAll(): Promise<void> {
    const claims = [...this.held.values()].map((h) => h.claim);
    this.held.clear();
    await this.store.release(claims);
  }

  private async renewAll(): Promise<void> {
    const claims = [...this.held.values()].map((h) => h.claim);
    if (claims.length === 0) return;
    const at = this.clock.now();
    try {
      const kept = await this.store.renewAll(claims, this.leaseMs);
      for (const claim of claims) {
        const entry = this.held.get(claim.token);
        if (!entry) continue;
        if (kept.has(claim.token)) entry.until = at + this.leaseMs;
        else {
          // Finished or parked while this renewal ran (the usual case), or taken over after
          // its lease ran out: either way no longer this process's to extend.
          this.held.delete(claim.token);
          this.logger.debug({ item_id: claim.itemId }, 'a claim is no longer held');
        }
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'extending claims failed; will try again');
    }
  }
}
