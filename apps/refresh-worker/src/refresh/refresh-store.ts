import { queryRows } from '@cashflow/persistence';
import type { RefreshAccepted, RefreshFailed, RefreshFailure } from '@cashflow/contracts';
import type { DataSource, EntityManager } from 'typeorm';
import type { Member } from './outcomes';

export type OutcomeEvent = RefreshAccepted | RefreshFailed;

/** A Plaid call waiting to be tried again, with every request it will answer. */
export interface WaitingCall {
  readonly itemId: string;
  readonly leader: Member;
  readonly followers: readonly Member[];
  readonly days: number;
  /** Plaid calls made so far. */
  readonly attempts: number;
  readonly lastError: RefreshFailure;
  readonly dueAt: Date;
}

interface RetryRow {
  item_id: string;
  leader: Member;
  followers: Member[];
  days_requested: number;
  attempts: number;
  last_error: RefreshFailure;
  due_at: Date;
}

const toWaiting = (row: RetryRow): WaitingCall => ({
  itemId: row.item_id,
  leader: row.leader,
  followers: row.followers,
  days: row.days_requested,
  attempts: row.attempts,
  lastError: row.last_error,
  dueAt: row.due_at,
});

/** What the worker already knows of a request when it (re)arrives. */
export interface Known {
  /** Its outcome, recorded earlier: answer with this, never call Plaid again. */
  readonly outcome?: OutcomeEvent;
  /** Whether that outcome is known to be on Kafka already. */
  readonly published?: boolean;
  /** The Item's waiting call, if any: join it rather than calling Plaid. */
  readonly waiting?: WaitingCall;
}

/** PostgreSQL side of the worker: the outcome outbox and the waiting calls. */
export class RefreshStore {
  constructor(private readonly db: DataSource) {}

  async known(requestId: string, itemId: string): Promise<Known> {
    const rows = await queryRows<{
      outcome: OutcomeEvent | null;
      published: boolean | null;
      waiting: RetryRow | null;
    }>(
      this.db,
      `SELECT o.event AS outcome, o.published_at IS NOT NULL AS published,
                (SELECT row_to_json(r) FROM refresh_retries r WHERE item_id = $2) AS waiting
         FROM (SELECT 1) AS one LEFT JOIN refresh_outcomes o ON o.request_id = $1`,
      [requestId, itemId],
    );
    const row = rows[0];
    return {
      ...(row?.outcome ? { outcome: row.outcome, published: row.published === true } : {}),
      ...(row?.waiting
        ? { waiting: toWaiting({ ...row.waiting, due_at: new Date(row.waiting.due_at) }) }
        : {}),
    };
  }

  /** Records outcomes before they are published (the outbox). A request keeps its first outcome. */
  async record(
    events: readonly OutcomeEvent[],
    manager: EntityManager = this.db.manager,
  ): Promise<OutcomeEvent[]> {
    if (events.length === 0) return [];
    const params: unknown[] = [];
    const values = events.map((e, i) => {
      params.push(
        e.data.refresh_request_id,
        e.data.item_id,
        e.metadata.id,
        e.type,
        JSON.stringify(e),
      );
      const b = i * 5;
      return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}::jsonb)`;
    });
    const inserted = await queryRows<{ request_id: string }>(
      manager,
      `INSERT INTO refresh_outcomes (request_id, item_id, event_id, outcome_type, event)
       VALUES ${values.join(', ')} ON CONFLICT (request_id) DO NOTHING RETURNING request_id`,
      params,
    );
    if (inserted.length === events.length) return [...events];
    // Answered already (a redelivered request handled twice at once, e.g. across a rebalance):
    // the outcome recorded first is the one, so every copy published carries the same content.
    const fresh = new Set(inserted.map((r) => r.request_id));
    const earlier = await queryRows<{ request_id: string; event: OutcomeEvent }>(
      manager,
      `SELECT request_id, event FROM refresh_outcomes WHERE request_id = ANY($1)`,
      [events.map((e) => e.data.refresh_request_id).filter((id) => !fresh.has(id))],
    );
    const stored = new Map(earlier.map((r) => [r.request_id, r.event]));
    return events.map((e) =>
      fresh.has(e.data.refresh_request_id) ? e : (stored.get(e.data.refresh_request_id) ?? e),
    );
  }

  async markPublished(requestIds: readonly string[]): Promise<void> {
    if (requestIds.length === 0) return;
    await this.db.query(
      `UPDATE refresh_outcomes SET published_at = now() WHERE request_id = ANY($1) AND published_at IS NULL`,
      [requestIds],
    );
  }

  /** Outcomes recorded at least `olderThanMs` ago and not yet stamped as published. */
  async unpublished(olderThanMs: number, limit: number): Promise<OutcomeEvent[]> {
    const rows = await queryRows<{ event: OutcomeEvent }>(
      this.db,
      `SELECT event FROM refresh_outcomes
       WHERE published_at IS NULL AND recorded_at < now() - make_interval(secs => $1 / 1000.0)
       ORDER BY recorded_at LIMIT $2`,
      [olderThanMs, limit],
    );
    return rows.map((r) => r.event);
  }

  /** Parks a failed call to be tried again; a call already parked for the Item absorbs it. */
  async park(call: WaitingCall): Promise<void> {
    await this.db.query(
      `INSERT INTO refresh_retries (item_id, leader, followers, days_requested, attempts, last_error, due_at)
       VALUES ($1, $2::jsonb, $3::jsonb, $4, $5, $6::jsonb, $7)
       ON CONFLICT (item_id) DO UPDATE SET
         followers = refresh_retries.followers || jsonb_build_array(EXCLUDED.leader) || EXCLUDED.followers,
         days_requested = greatest(refresh_retries.days_requested, EXCLUDED.days_requested),
         updated_at = now()`,
      [
        call.itemId,
        JSON.stringify(call.leader),
        JSON.stringify(call.followers),
        call.days,
        call.attempts,
        JSON.stringify(call.lastError),
        call.dueAt,
      ],
    );
  }

  /** Adds requests to the Item's waiting call; false when there is none any more. */
  async join(itemId: string, members: readonly Member[]): Promise<boolean> {
    const days = Math.max(...members.map((m) => m.days));
    const rows = await queryRows<unknown>(
      this.db,
      `UPDATE refresh_retries SET followers = followers || $2::jsonb,
         days_requested = greatest(days_requested, $3), updated_at = now()
       WHERE item_id = $1 RETURNING item_id`,
      [itemId, JSON.stringify(members), days],
    );
    return rows.length > 0;
  }

  /** Claims waiting calls that are due, for `leaseMs`; other workers skip them meanwhile. */
  async claimDue(limit: number, leaseMs: number): Promise<WaitingCall[]> {
    const rows = await queryRows<RetryRow>(
      this.db,
      `UPDATE refresh_retries SET claimed_until = now() + make_interval(secs => $2 / 1000.0)
       WHERE item_id IN (
         SELECT item_id FROM refresh_retries
         WHERE due_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
         ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [limit, leaseMs],
    );
    return rows.map(toWaiting);
  }

  /** Gives up claims this process will not finish (it is stopping): due again at once. */
  async release(itemIds: readonly string[]): Promise<void> {
    if (itemIds.length === 0) return;
    await this.db.query(
      `UPDATE refresh_retries SET claimed_until = NULL WHERE item_id = ANY($1) AND claimed_until IS NOT NULL`,
      [itemIds],
    );
  }

  /**
   * Ends a waiting call: removes it and records the outcomes `answer` gives for everyone in it,
   * including requests that joined while the call was running, in one transaction.
   */
  async finish(
    itemId: string,
    answer: (call: WaitingCall) => OutcomeEvent[],
  ): Promise<OutcomeEvent[]> {
    return this.db.transaction(async (manager) => {
      const rows = await queryRows<RetryRow>(
        manager,
        `DELETE FROM refresh_retries WHERE item_id = $1 RETURNING *`,
        [itemId],
      );
      const row = rows[0];
      if (!row) return [];
      return this.record(answer(toWaiting(row)), manager);
    });
  }

  /** Tries the waiting call again later, with its count of calls and last error. */
  async reschedule(
    itemId: string,
    attempts: number,
    lastError: RefreshFailure,
    dueAt: Date,
  ): Promise<void> {
    await this.db.query(
      `UPDATE refresh_retries SET attempts = $2, last_error = $3::jsonb, due_at = $4, claimed_until = NULL,
         updated_at = now() WHERE item_id = $1`,
      [itemId, attempts, JSON.stringify(lastError), dueAt],
    );
  }

  /** The soonest due time of any waiting call, for the scheduler's next wake-up. */
  async nextDue(): Promise<Date | undefined> {
    const rows = await queryRows<{ due: Date | null }>(
      this.db,
      `SELECT min(due_at) AS due FROM refresh_retries`,
    );
    return rows[0]?.due ?? undefined;
  }
}
