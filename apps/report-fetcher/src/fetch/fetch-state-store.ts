import type { TraceFields } from '@cashflow/kafka';
import { queryRows } from '@cashflow/persistence';
import type { DataSource } from 'typeorm';
import {
  duePoll,
  evolve,
  initialItemFetches,
  nextDueAt,
  type FetchInput,
  type FetchPlan,
  type ItemFetches,
  type PollPlan,
  type PollPolicy,
} from './item-fetches';

/** A fetch a runner holds: one per Item at a time, across processes, until `release`. */
export interface FetchClaim {
  readonly itemId: string;
  readonly token: string;
  /** The fetch to make; null when the claim is to poll, or only to publish what was left. */
  readonly plan: FetchPlan | null;
  /** The poll to make (rule 9) when no fetch is. */
  readonly poll: PollPlan | null;
  /** Failed attempts at this fetch before this one. */
  readonly attempts: number;
  /** The trace contexts of the acceptances the fetch brings data for (span links). */
  readonly acceptanceTraces?: readonly TraceFields[];
}

/** A query runner or an entity manager in a transaction: what the SQL here runs on. */
type Runner = { query(sql: string, parameters?: unknown[]): Promise<unknown> };

/**
 * report_fetch_items: each Item's ItemFetches state as JSON, applied under the row's lock, with
 * when its next fetch or poll is due (`due_at`) and who holds it (`claim_token`,
 * `claimed_until`). A claimed Item stays due at its claim's end, so a runner that dies hands it
 * over when its lease runs out.
 */
export class FetchStateStore {
  constructor(
    private readonly db: DataSource,
    private readonly policy: PollPolicy,
  ) {}

  /** Applies `input` to the Item's state; true when a fetch or poll is due now. */
  async apply(itemId: string, input: FetchInput, now: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const state = await this.lock(tx, itemId);
      const next = evolve(state, input, now);
      if (next !== state) await this.write(tx, next);
      const due = nextDueAt(next, this.policy);
      return due !== null && due <= now;
    });
  }

  /** The Item's state, if the fetcher knows it. */
  async read(itemId: string): Promise<ItemFetches | undefined> {
    const rows: { state: ItemFetches }[] = await this.db.query(
      'SELECT state FROM report_fetch_items WHERE item_id = $1',
      [itemId],
    );
    return rows[0]?.state;
  }

  /** Claims up to `limit` Items whose fetch is due (or whose holder's lease ran out). */
  async claimDue(limit: number, leaseMs: number, now: number): Promise<FetchClaim[]> {
    return this.db.transaction(async (tx) => {
      const rows = await queryRows<{ item_id: string; state: ItemFetches }>(
        tx,
        `SELECT item_id, state FROM report_fetch_items
          WHERE due_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1)
          ORDER BY due_at
          LIMIT $2
          FOR UPDATE SKIP LOCKED`,
        [new Date(now), limit],
      );
      const claims: FetchClaim[] = [];
      for (const row of rows) {
        const next = evolve(row.state, { kind: 'claimed' }, now);
        const claimed = await queryRows<{ claim_token: string }>(
          tx,
          `UPDATE report_fetch_items
              SET state = $2, claim_token = gen_random_uuid(),
                  claimed_until = $3, due_at = $3, updated_at = now()
            WHERE item_id = $1
            RETURNING claim_token`,
          [row.item_id, next, new Date(now + leaseMs)],
        );
        claims.push({
          itemId: row.item_id,
          token: claimed[0]!.claim_token,
          plan: next.running,
          poll: next.running ? null : duePoll(next, now, this.policy),
          attempts: next.attempts,
          acceptanceTraces: next.pending.filter((a) =>
            next.running?.requestIds.includes(a.requestId),
          ),
        });
      }
      return claims;
    });
  }

  /** Extends the claim; false when it is no longer held (taken over after its lease). */
  async renew(claim: FetchClaim, leaseMs: number, now: number): Promise<boolean> {
    const rows = await queryRows(
      this.db,
      `UPDATE report_fetch_items SET claimed_until = $3, due_at = $3
        WHERE item_id = $1 AND claim_token = $2
        RETURNING 1`,
      [claim.itemId, claim.token, new Date(now + leaseMs)],
    );
    return rows.length > 0;
  }

  /**
   * Within the caller's transaction: locks the Item's state if `claim` still holds it, so the
   * caller can end its fetch (undefined when the claim was lost).
   */
  async lockClaimed(tx: Runner, claim: FetchClaim): Promise<ItemFetches | undefined> {
    const rows = (await tx.query(
      'SELECT state FROM report_fetch_items WHERE item_id = $1 AND claim_token = $2 FOR UPDATE',
      [claim.itemId, claim.token],
    )) as { state: ItemFetches }[];
    return rows[0]?.state;
  }

  /** Within the caller's transaction: writes a claimed Item's new state, keeping the claim. */
  async writeClaimed(tx: Runner, state: ItemFetches): Promise<void> {
    await tx.query(
      'UPDATE report_fetch_items SET state = $2, updated_at = now() WHERE item_id = $1',
      [state.itemId, state],
    );
  }

  /** Applies `input` to a claimed Item's state; false when the claim was lost. */
  async applyClaimed(claim: FetchClaim, input: FetchInput, now: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const state = await this.lockClaimed(tx, claim);
      if (!state) return false;
      await this.writeClaimed(tx, evolve(state, input, now));
      return true;
    });
  }

  /** Lets go of the claim: the Item is due again when its state says so. */
  async release(claim: FetchClaim): Promise<void> {
    await this.db.transaction(async (tx) => {
      const state = await this.lockClaimed(tx, claim);
      if (!state) return;
      await tx.query(
        `UPDATE report_fetch_items SET claim_token = NULL, claimed_until = NULL, due_at = $2
          WHERE item_id = $1`,
        [claim.itemId, this.dueAt(state)],
      );
    });
  }

  private async lock(tx: Runner, itemId: string): Promise<ItemFetches> {
    await tx.query(
      `INSERT INTO report_fetch_items (item_id, state) VALUES ($1, $2)
       ON CONFLICT (item_id) DO NOTHING`,
      [itemId, initialItemFetches(itemId)],
    );
    const rows = (await tx.query(
      'SELECT state FROM report_fetch_items WHERE item_id = $1 FOR UPDATE',
      [itemId],
    )) as { state: ItemFetches }[];
    return rows[0]!.state;
  }

  /** An unclaimed Item's state and when it is due; a claimed one stays due at its claim's end. */
  private async write(tx: Runner, state: ItemFetches): Promise<void> {
    await tx.query(
      `UPDATE report_fetch_items
          SET state = $2, updated_at = now(),
              due_at = CASE WHEN claim_token IS NULL THEN $3 ELSE due_at END
        WHERE item_id = $1`,
      [state.itemId, state, this.dueAt(state)],
    );
  }

  private dueAt(state: ItemFetches): Date | null {
    const due = nextDueAt(state, this.policy);
    return due === null ? null : new Date(due);
  }
}
