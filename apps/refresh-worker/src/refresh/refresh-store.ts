import { queryRows } from '@cashflow/persistence';
import type { RefreshAccepted, RefreshFailed, RefreshFailure } from '@cashflow/contracts';
import type { DataSource, EntityManager } from 'typeorm';
import { Batched } from '@cashflow/persistence';
import type { Member } from './outcomes';
import type { HealthRow } from '../health/health-store';

export type OutcomeEvent = RefreshAccepted | RefreshFailed;

/** A Plaid call parked in PostgreSQL to be tried again, with every request it will answer. */
export interface ParkedCall {
  readonly itemId: string;
  /** Leader first: the request that made the call, then those that joined it. */
  readonly members: readonly Member[];
  readonly days: number;
  /** Plaid calls made so far (0 for requests that joined a retry already at Plaid). */
  readonly attempts: number;
  readonly lastError: RefreshFailure | null;
  readonly dueAt: Date;
}

/** A parked call this process holds until `token`'s lease runs out. */
export interface Claim extends ParkedCall {
  readonly token: string;
}

interface RetryRow {
  item_id: string;
  leader: Member;
  followers: Member[];
  days_requested: number;
  attempts: number;
  last_error: RefreshFailure | null;
  due_at: Date | string;
  claim_token: string | null;
}

const toParked = (row: RetryRow): ParkedCall => ({
  itemId: row.item_id,
  members: [row.leader, ...row.followers],
  days: row.days_requested,
  attempts: row.attempts,
  lastError: row.last_error,
  dueAt: new Date(row.due_at),
});

const mostDays = (members: readonly Member[]) => Math.max(...members.map((m) => m.days));

/** A recorded outcome, and whether Kafka is known to have it. */
export interface Recorded {
  readonly event: OutcomeEvent;
  readonly published: boolean;
}

/** What startCall did: the call's row, claimed, or the members answered elsewhere. */
export interface StartedCall {
  readonly claim: Claim | undefined;
  readonly answered: ReadonlyMap<string, Recorded>;
}

interface FinishInput {
  readonly claim: Claim;
  readonly answers: readonly OutcomeEvent[];
  readonly leftoverDueAt: Date;
}

/** Whose request an id is: the (source, Item) first seen with it. */
export interface IdOwner {
  readonly itemId: string;
  /** Null for requests answered before sources were kept: they match on the Item alone. */
  readonly source: string | null;
}

/** What the worker already knows of a request when it (re)arrives. */
export interface Known {
  /** Another request (another source or Item) used this id first: this one must be refused. */
  readonly idTakenBy?: IdOwner;
  /** Its outcome, recorded earlier: answer with this, never call Plaid again. */
  readonly recorded?: Recorded;
  /**
   * The Item's call in PostgreSQL, if any (parked, or out at Plaid): join it rather than calling
   * Plaid. `claimToken` says whose it is while it is claimed.
   */
  readonly parked?: ParkedCall & { readonly claimToken: string | null };
  /** The Item's item_health row, if it has one (none: healthy). */
  readonly health?: HealthRow;
}

/** The request's id is being claimed right now by another request: try again. */
export class IdClaimRace extends Error {
  constructor(requestId: string) {
    super(`request id ${requestId} is being claimed by another request at this moment; retrying`);
    this.name = 'IdClaimRace';
  }
}

/** PostgreSQL side of the worker: the outcome outbox and the waiting calls. */
export class RefreshStore {
  constructor(private readonly db: DataSource) {}

  /**
   * Claims the request's id for (source, Item) if it is new, and reads what is known of it: who
   * owns the id, its outcome, the Item's call in PostgreSQL. Requests admitted at the same time
   * share one round trip.
   */
  async known(request: { id: string; source: string; itemId: string }): Promise<Known> {
    const known = await this.admissions.call(request);
    if (known instanceof IdClaimRace) throw known;
    return known;
  }

  /** `known` for every request admitted meanwhile, in one statement. */
  private readonly admissions = new Batched<
    { id: string; source: string; itemId: string },
    Known | IdClaimRace
  >(async (requests) => {
    const rows = await queryRows<{
      ord: number;
      claimed_now: boolean;
      owner: { item_id: string; source: string | null } | null;
      first_item: string;
      first_source: string;
      outcome: OutcomeEvent | null;
      published: boolean | null;
      parked: RetryRow | null;
      health: HealthRow | null;
    }>(
      this.db,
      `WITH input AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb)
                    AS i(ord integer, request_id text, item_id text, source text)),
       firsts AS (
         SELECT DISTINCT ON (request_id) request_id, item_id, source FROM input
          ORDER BY request_id, ord),
       claim AS (
         INSERT INTO refresh_request_ids (request_id, item_id, source)
         SELECT request_id, item_id, source FROM firsts
         ON CONFLICT (request_id) DO NOTHING RETURNING request_id)
       SELECT i.ord,
              EXISTS (SELECT 1 FROM claim c WHERE c.request_id = i.request_id) AS claimed_now,
              (SELECT json_build_object('item_id', x.item_id, 'source', x.source)
                 FROM refresh_request_ids x WHERE x.request_id = i.request_id) AS owner,
              f.item_id AS first_item, f.source AS first_source,
              o.event AS outcome, o.published_at IS NOT NULL AS published,
              (SELECT row_to_json(r) FROM refresh_retries r WHERE r.item_id = i.item_id) AS parked,
              (SELECT row_to_json(h) FROM item_health h WHERE h.item_id = i.item_id) AS health
         FROM input i
         JOIN firsts f ON f.request_id = i.request_id
         LEFT JOIN refresh_outcomes o ON o.request_id = i.request_id
        ORDER BY i.ord`,
      [
        JSON.stringify(
          requests.map((r, ord) => ({
            ord,
            request_id: r.id,
            item_id: r.itemId,
            source: r.source,
          })),
        ),
      ],
    );
    return rows.map((row): Known | IdClaimRace => {
      const request = requests[row.ord]!;
      // Claimed by this statement (its insert is invisible to the statement itself): the owner
      // is the first copy of the id in this batch. Otherwise the row that was there already; none
      // means another transaction claimed it after this statement began: not visible yet.
      const owner = row.claimed_now
        ? { item_id: row.first_item, source: row.first_source }
        : row.owner;
      if (!owner) return new IdClaimRace(request.id);
      if (
        owner.item_id !== request.itemId ||
        (owner.source !== null && owner.source !== request.source)
      ) {
        return { idTakenBy: { itemId: owner.item_id, source: owner.source } };
      }
      return {
        ...(row.outcome
          ? { recorded: { event: row.outcome, published: row.published === true } }
          : {}),
        ...(row.parked
          ? { parked: { ...toParked(row.parked), claimToken: row.parked.claim_token } }
          : {}),
        ...(row.health ? { health: row.health } : {}),
      };
    });
  });

  /** The recorded outcomes of those of `requestIds` that have one. */
  recorded(requestIds: readonly string[]): Promise<Map<string, Recorded>> {
    if (requestIds.length === 0) return Promise.resolve(new Map<string, Recorded>());
    return this.lookups.call(requestIds);
  }

  private readonly lookups = new Batched<readonly string[], Map<string, Recorded>>(
    async (batches) => {
      const rows = await queryRows<{ request_id: string; event: OutcomeEvent; published: boolean }>(
        this.db,
        `SELECT request_id, event, published_at IS NOT NULL AS published
           FROM refresh_outcomes WHERE request_id = ANY($1)`,
        [[...new Set(batches.flat())]],
      );
      const found = new Map(
        rows.map((r) => [r.request_id, { event: r.event, published: r.published }]),
      );
      return batches.map(
        (ids) => new Map(ids.flatMap((id) => (found.has(id) ? [[id, found.get(id)!]] : []))),
      );
    },
  );

  /** Records outcomes before they are published (the outbox). A request keeps its first outcome. */
  async record(
    events: readonly OutcomeEvent[],
    manager: EntityManager = this.db.manager,
  ): Promise<OutcomeEvent[]> {
    if (events.length === 0) return [];
    // Two copies of one request in a batch (two deliveries answered at once): the first is the one.
    const firsts = new Map<string, OutcomeEvent>();
    for (const e of events) {
      if (!firsts.has(e.data.refresh_request_id)) firsts.set(e.data.refresh_request_id, e);
    }
    const unique = [...firsts.values()];
    const params: unknown[] = [];
    const values = unique.map((e, i) => {
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
    if (inserted.length === unique.length) {
      return events.map((e) => firsts.get(e.data.refresh_request_id)!);
    }
    // Answered already (a redelivered request handled twice at once, e.g. across a rebalance):
    // the outcome recorded first is the one, so every copy published carries the same content.
    const fresh = new Set(inserted.map((r) => r.request_id));
    const earlier = await queryRows<{ request_id: string; event: OutcomeEvent }>(
      manager,
      `SELECT request_id, event FROM refresh_outcomes WHERE request_id = ANY($1)`,
      [events.map((e) => e.data.refresh_request_id).filter((id) => !fresh.has(id))],
    );
    const stored = new Map(earlier.map((r) => [r.request_id, r.event]));
    return events.map((e) => {
      const id = e.data.refresh_request_id;
      return fresh.has(id) ? firsts.get(id)! : (stored.get(id) ?? firsts.get(id)!);
    });
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

  /**
   * Makes the Item's call durable just before it leaves for Plaid: its row, claimed by this
   * process for `leaseMs` (kept alive by a ClaimKeeper while the call is out). A request handed to
   * another worker meanwhile then finds itself in the row and is not called again; a call whose
   * process dies is claimed by another once the lease runs out. Undefined when the Item has a call
   * in PostgreSQL already (parked, or out with another worker): join that one instead. When a
   * member's outcome is recorded already (answered by another worker meanwhile), nothing is
   * written and `answered` says which: start again without them.
   */
  startCall(call: Omit<ParkedCall, 'dueAt'>, leaseMs: number): Promise<StartedCall> {
    return this.starts.call({ call, leaseMs });
  }

  private readonly starts = new Batched<
    { call: Omit<ParkedCall, 'dueAt'>; leaseMs: number },
    StartedCall
  >(async (inputs) => {
    const [row] = await queryRows<{
      rows: RetryRow[] | null;
      answered: { request_id: string; event: OutcomeEvent; published: boolean }[] | null;
    }>(
      this.db,
      `WITH c AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb)
                    AS c(item_id text, leader jsonb, followers jsonb, days integer,
                         attempts integer, last_error jsonb, lease_ms integer, ids text[])),
       a AS (
         SELECT o.request_id, o.event, o.published_at IS NOT NULL AS published
           FROM refresh_outcomes o WHERE o.request_id IN (SELECT unnest(c.ids) FROM c)),
       ins AS (
         INSERT INTO refresh_retries (item_id, leader, followers, days_requested, attempts,
                                      last_error, due_at, claimed_until, claim_token)
         SELECT c.item_id, c.leader, c.followers, c.days, c.attempts, c.last_error, now(),
                now() + make_interval(secs => c.lease_ms / 1000.0), gen_random_uuid()
           FROM c WHERE NOT EXISTS (SELECT 1 FROM a WHERE a.request_id = ANY (c.ids))
         ON CONFLICT (item_id) DO NOTHING RETURNING *)
       SELECT (SELECT json_agg(ins) FROM ins) AS rows, (SELECT json_agg(a) FROM a) AS answered`,
      [
        JSON.stringify(
          inputs.map(({ call, leaseMs }) => ({
            item_id: call.itemId,
            leader: call.members[0],
            followers: call.members.slice(1),
            days: call.days,
            attempts: call.attempts,
            last_error: call.lastError,
            lease_ms: leaseMs,
            ids: call.members.map((m) => m.requestId),
          })),
        ),
      ],
    );
    const claims = new Map(
      (row?.rows ?? []).map((r) => [r.item_id, { ...toParked(r), token: r.claim_token! }]),
    );
    const answered = new Map(
      (row?.answered ?? []).map((a) => [a.request_id, { event: a.event, published: a.published }]),
    );
    return inputs.map(({ call }) => ({
      claim: claims.get(call.itemId),
      answered: new Map(
        call.members.flatMap((m) =>
          answered.has(m.requestId) ? [[m.requestId, answered.get(m.requestId)!]] : [],
        ),
      ),
    }));
  });

  /** Adds requests to the Item's parked call; false when there is none any more. */
  async join(itemId: string, members: readonly Member[]): Promise<boolean> {
    const rows = await queryRows<unknown>(
      this.db,
      `UPDATE refresh_retries SET followers = followers || $2::jsonb,
         days_requested = greatest(days_requested, $3), updated_at = now()
       WHERE item_id = $1 RETURNING item_id`,
      [itemId, JSON.stringify(members), mostDays(members)],
    );
    return rows.length > 0;
  }

  /**
   * Claims up to `limit` parked calls that are due, for `leaseMs`, each with a token of its own;
   * other workers skip them meanwhile, and after the lease only a new claim may finish them.
   */
  async claimDue(limit: number, leaseMs: number): Promise<Claim[]> {
    if (limit <= 0) return [];
    const rows = await queryRows<RetryRow>(
      this.db,
      `UPDATE refresh_retries
          SET claimed_until = now() + make_interval(secs => $2 / 1000.0), claim_token = gen_random_uuid()
       WHERE item_id IN (
         SELECT item_id FROM refresh_retries
         WHERE due_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
         ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [limit, leaseMs],
    );
    return rows.map((row) => ({ ...toParked(row), token: row.claim_token! }));
  }

  /** Extends a claim just before its call leaves; false when it is no longer this claim's. */
  async renew(claim: Claim, leaseMs: number): Promise<boolean> {
    const rows = await queryRows<unknown>(
      this.db,
      `UPDATE refresh_retries SET claimed_until = now() + make_interval(secs => $3 / 1000.0)
       WHERE item_id = $1 AND claim_token = $2 RETURNING item_id`,
      [claim.itemId, claim.token, leaseMs],
    );
    return rows.length > 0;
  }

  /** Extends every claim in `claims` still this process's; returns the tokens extended. */
  async renewAll(claims: readonly Claim[], leaseMs: number): Promise<Set<string>> {
    if (claims.length === 0) return new Set();
    const rows = await queryRows<{ claim_token: string }>(
      this.db,
      `UPDATE refresh_retries SET claimed_until = now() + make_interval(secs => $2 / 1000.0)
       WHERE claim_token = ANY($1::uuid[]) RETURNING claim_token`,
      [claims.map((c) => c.token), leaseMs],
    );
    return new Set(rows.map((r) => r.claim_token));
  }

  /** Parked calls waiting for their retry: not claimed, or claimed by a process that died. */
  async waiting(): Promise<number> {
    const [row] = await queryRows<{ n: number }>(
      this.db,
      `SELECT count(*)::int AS n FROM refresh_retries
        WHERE claimed_until IS NULL OR claimed_until < now()`,
    );
    return row?.n ?? 0;
  }

  /** Gives up claims this process will not finish (it is stopping): due again at once. */
  async release(claims: readonly Claim[]): Promise<void> {
    if (claims.length === 0) return;
    await this.db.query(
      `UPDATE refresh_retries SET claimed_until = NULL, claim_token = NULL
       FROM unnest($1::text[], $2::uuid[]) AS c(item_id, token)
       WHERE refresh_retries.item_id = c.item_id AND refresh_retries.claim_token = c.token`,
      [claims.map((c) => c.itemId), claims.map((c) => c.token)],
    );
  }

  /**
   * Ends a claimed call: records `answers` (the outcomes of the members the call carried) and
   * takes the claimed members out, in one transaction. Requests that joined while the call was
   * at Plaid were not carried by it: they stay parked as a call of their own, due at
   * `leftoverDueAt`. Undefined when the claim was taken over (nothing is written).
   */
  finish(
    claim: Claim,
    answers: readonly OutcomeEvent[],
    leftoverDueAt: Date,
  ): Promise<OutcomeEvent[] | undefined> {
    return this.finishes.call({ claim, answers, leftoverDueAt });
  }

  private readonly finishes = new Batched<FinishInput, OutcomeEvent[] | undefined>(
    async (inputs) => {
      // Most calls end with nobody joined meanwhile: one statement ends them and records their
      // outcomes. The others (requests left over, or a claim taken over) take the longer way.
      const quick = await this.finishAlone(inputs);
      const rest = inputs.filter((i) => !quick.has(i.claim.itemId));
      const slow = rest.length > 0 ? await this.finishWithLeftovers(rest) : [];
      const slowByItem = new Map(rest.map((input, i) => [input.claim.itemId, slow[i]]));
      return inputs.map((i) =>
        quick.has(i.claim.itemId) ? quick.get(i.claim.itemId) : slowByItem.get(i.claim.itemId),
      );
    },
  );

  /**
   * Ends the claimed calls whose row holds exactly the members they carried, and records their
   * outcomes, in one statement; returns what is recorded for each call it ended.
   */
  private async finishAlone(inputs: readonly FinishInput[]): Promise<Map<string, OutcomeEvent[]>> {
    const [row] = await queryRows<{ gone: string[] | null; inserted: string[] | null }>(
      this.db,
      `WITH c AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS c(item_id text, token uuid, carried integer)),
       gone AS (
         DELETE FROM refresh_retries r USING c
          WHERE r.item_id = c.item_id AND r.claim_token = c.token
            AND jsonb_array_length(r.followers) + 1 = c.carried
          RETURNING r.item_id),
       e AS (
         SELECT * FROM jsonb_to_recordset($2::jsonb)
                    AS e(ord integer, request_id text, item_id text, event_id text,
                         outcome_type text, event jsonb)),
       ins AS (
         INSERT INTO refresh_outcomes (request_id, item_id, event_id, outcome_type, event)
         SELECT DISTINCT ON (e.request_id) e.request_id, e.item_id, e.event_id, e.outcome_type,
                e.event
           FROM e WHERE e.item_id IN (SELECT item_id FROM gone)
          ORDER BY e.request_id, e.ord
         ON CONFLICT (request_id) DO NOTHING RETURNING request_id)
       SELECT (SELECT array_agg(item_id) FROM gone) AS gone,
              (SELECT array_agg(request_id) FROM ins) AS inserted`,
      [
        JSON.stringify(
          inputs.map((i) => ({
            item_id: i.claim.itemId,
            token: i.claim.token,
            carried: i.claim.members.length,
          })),
        ),
        JSON.stringify(
          inputs
            .flatMap((i) => i.answers)
            .map((e, ord) => ({
              ord,
              request_id: e.data.refresh_request_id,
              item_id: e.data.item_id,
              event_id: e.metadata.id,
              outcome_type: e.type,
              event: e,
            })),
        ),
      ],
    );
    const gone = new Set(row?.gone ?? []);
    const inserted = new Set(row?.inserted ?? []);
    const ended = inputs.filter((i) => gone.has(i.claim.itemId));
    // Answered already (handled twice at once across a rebalance): the earlier outcome is the one.
    const earlierIds = ended
      .flatMap((i) => i.answers)
      .map((e) => e.data.refresh_request_id)
      .filter((id) => !inserted.has(id));
    const earlier =
      earlierIds.length > 0 ? await this.recorded(earlierIds) : new Map<string, Recorded>();
    const firsts = new Map<string, OutcomeEvent>();
    for (const e of ended.flatMap((i) => i.answers)) {
      if (!firsts.has(e.data.refresh_request_id)) firsts.set(e.data.refresh_request_id, e);
    }
    return new Map(
      ended.map((i) => [
        i.claim.itemId,
        i.answers.map((e) => {
          const id = e.data.refresh_request_id;
          return inserted.has(id) ? firsts.get(id)! : (earlier.get(id)?.event ?? firsts.get(id)!);
        }),
      ]),
    );
  }

  /** Ends claimed calls that requests joined while they were out: those stay as a call of their own. */
  private finishWithLeftovers(
    inputs: readonly FinishInput[],
  ): Promise<(OutcomeEvent[] | undefined)[]> {
    return this.db.transaction(async (manager) => {
      const rows = await queryRows<RetryRow>(
        manager,
        `SELECT r.* FROM refresh_retries r
           JOIN unnest($1::text[], $2::uuid[]) AS c(item_id, token)
             ON r.item_id = c.item_id AND r.claim_token = c.token
         ORDER BY r.item_id FOR UPDATE OF r`,
        [inputs.map((i) => i.claim.itemId), inputs.map((i) => i.claim.token)],
      );
      const held = new Map(rows.map((row) => [row.item_id, row]));
      const done: string[] = [];
      const left: object[] = [];
      for (const { claim, leftoverDueAt } of inputs) {
        const row = held.get(claim.itemId);
        if (!row) continue;
        // Joins only ever append: whatever lies beyond the claimed members joined after the claim.
        const leftover = [row.leader, ...row.followers].slice(claim.members.length);
        if (leftover.length === 0) done.push(claim.itemId);
        else {
          left.push({
            item_id: claim.itemId,
            leader: leftover[0],
            followers: leftover.slice(1),
            days: mostDays(leftover),
            due_at: leftoverDueAt.toISOString(),
          });
        }
      }
      if (done.length > 0) {
        await manager.query(`DELETE FROM refresh_retries WHERE item_id = ANY($1)`, [done]);
      }
      if (left.length > 0) {
        // Left over: a call of their own, not yet attempted.
        await manager.query(
          `UPDATE refresh_retries r SET leader = l.leader, followers = l.followers,
             days_requested = l.days, attempts = 0, last_error = NULL, due_at = l.due_at,
             claimed_until = NULL, claim_token = NULL, updated_at = now()
             FROM jsonb_to_recordset($1::jsonb) AS l(item_id text, leader jsonb, followers jsonb,
                  days integer, due_at timestamptz)
            WHERE r.item_id = l.item_id`,
          [JSON.stringify(left)],
        );
      }
      const answered = inputs.filter((i) => held.has(i.claim.itemId));
      const recorded = await this.record(
        answered.flatMap((i) => i.answers),
        manager,
      );
      const byRequest = new Map(recorded.map((e) => [e.data.refresh_request_id, e]));
      return inputs.map((i) =>
        held.has(i.claim.itemId)
          ? i.answers.map((e) => byRequest.get(e.data.refresh_request_id) ?? e)
          : undefined,
      );
    });
  }

  /**
   * Parks the claimed call to be tried again later, with its count of calls and last error,
   * without the members in `answered` (their outcome is recorded elsewhere) and with
   * `alsoCarried` (requests that joined the call in this process). False when the claim was
   * taken over.
   */
  async reschedule(
    claim: Claim,
    retry: { attempts: number; lastError: RefreshFailure; dueAt: Date },
    answered: ReadonlySet<string>,
    alsoCarried: readonly Member[] = [],
  ): Promise<boolean> {
    return this.db.transaction(async (manager) => {
      const row = await lockClaimed(manager, claim);
      if (!row) return false;
      const inRow = [row.leader, ...row.followers];
      const known = new Set(inRow.map((m) => m.requestId));
      const members = [...inRow, ...alsoCarried.filter((m) => !known.has(m.requestId))].filter(
        (m) => !answered.has(m.requestId),
      );
      if (members.length === 0) {
        await manager.query(`DELETE FROM refresh_retries WHERE item_id = $1`, [claim.itemId]);
        return true;
      }
      const [leader, ...followers] = members;
      await manager.query(
        `UPDATE refresh_retries SET leader = $2::jsonb, followers = $3::jsonb, days_requested = $4,
           attempts = $5, last_error = $6::jsonb, due_at = $7, claimed_until = NULL, claim_token = NULL,
           updated_at = now()
         WHERE item_id = $1`,
        [
          claim.itemId,
          JSON.stringify(leader),
          JSON.stringify(followers),
          mostDays(members),
          retry.attempts,
          JSON.stringify(retry.lastError),
          retry.dueAt,
        ],
      );
      return true;
    });
  }
}

/** The claimed call's row, locked for this transaction; undefined once the claim is not this one. */
async function lockClaimed(manager: EntityManager, claim: Claim): Promise<RetryRow | undefined> {
  const rows = await queryRows<RetryRow>(
    manager,
    `SELECT * FROM refresh_retries WHERE item_id = $1 AND claim_token = $2 FOR UPDATE`,
    [claim.itemId, claim.token],
  );
  return rows[0];
}
