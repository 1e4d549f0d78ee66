import type { ItemHealthRestored, ItemNeedsAttention } from '@cashflow/contracts';
import { queryRows } from '@cashflow/persistence';
import type { DataSource } from 'typeorm';
import { Batched } from '@cashflow/persistence';
import { changeEvent, type ItemFact } from './health-events';
import {
  decide,
  healthOf,
  initialItemHealth,
  type Health,
  type HealthFacts,
  type ItemHealth,
} from './item-health';

export type HealthEvent = ItemNeedsAttention | ItemHealthRestored;

/** An item_health row. */
export interface HealthRow {
  item_id: string;
  status: Health['status'];
  reason: string | null;
  consent_expires_at: Date | string | null;
  facts: HealthFacts;
  sequence: number;
}

/** The decider's state from an item_health row (the initial state without one). */
export function stateOf(itemId: string, row: HealthRow | null | undefined): ItemHealth {
  return row ? { itemId, facts: row.facts, sequence: row.sequence } : initialItemHealth(itemId);
}

/** The row of `state`: its facts, and its health spelled out for whoever reads the table. */
function rowOf(state: ItemHealth): HealthRow {
  const h = healthOf(state);
  return {
    item_id: state.itemId,
    status: h.status,
    reason: h.status === 'needs_user_action' || h.status === 'revoked' ? h.reason : null,
    consent_expires_at: h.status === 'consent_expiring' ? h.expiresAt : null,
    facts: state.facts,
    sequence: state.sequence,
  };
}

/**
 * PostgreSQL side of Item health: the state refusals rest on (item_health) and the outbox of
 * changes (item_health_events). Facts about one Item may come from several consumers and
 * replicas at once (webhooks, refresh outcomes, a token registered): each batch folds its facts
 * under a transaction-scoped advisory lock per Item, so no two fold the same Item at once, and
 * writes the new state with the events of its changes in one transaction.
 */
export class HealthStore {
  constructor(
    private readonly db: DataSource,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Folds `fact` into its Item's health; resolves with the change events it wrote (0 or 1). */
  apply(fact: ItemFact): Promise<HealthEvent[]> {
    return this.folds.call(fact);
  }

  private readonly folds = new Batched<ItemFact, HealthEvent[]>(
    (facts) =>
      this.db.transaction(async (manager) => {
        const itemIds = [...new Set(facts.map((f) => f.itemId))].sort();
        // In one order, so two batches never wait on each other crosswise.
        await manager.query(
          `SELECT pg_advisory_xact_lock(hashtextextended(id, 1764900000)) FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n) ORDER BY n`,
          [itemIds],
        );
        const rows = await queryRows<HealthRow>(
          manager,
          'SELECT item_id, status, reason, consent_expires_at, facts, sequence FROM item_health WHERE item_id = ANY($1)',
          [itemIds],
        );
        const states = new Map(itemIds.map((id) => [id, stateOf(id, undefined)]));
        for (const row of rows) states.set(row.item_id, stateOf(row.item_id, row));
        const decidedAt = this.now();
        // Items whose facts moved on: written even when their health did not change, so a fact
        // read later is weighed against them (rule 1 of item-health.ts).
        const moved = new Set<string>();
        const events = facts.map((fact) => {
          const before = states.get(fact.itemId)!;
          const decided = decide(before, fact.fact);
          if (decided.state === before) return [];
          states.set(fact.itemId, decided.state);
          moved.add(fact.itemId);
          if (!decided.change) return [];
          return [
            changeEvent(
              decided.change,
              fact,
              healthOf(before),
              healthOf(decided.state),
              decided.state.sequence,
              decidedAt,
            ),
          ];
        });
        if (moved.size === 0) return events;
        await manager.query(
          `INSERT INTO item_health (item_id, status, reason, consent_expires_at, facts, sequence)
           SELECT item_id, status, reason, consent_expires_at, facts, sequence
             FROM jsonb_to_recordset($1::jsonb) AS h(item_id text, status text, reason text,
                  consent_expires_at timestamptz, facts jsonb, sequence integer)
           ON CONFLICT (item_id) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason,
             consent_expires_at = EXCLUDED.consent_expires_at, facts = EXCLUDED.facts,
             sequence = EXCLUDED.sequence, updated_at = now()`,
          [JSON.stringify([...moved].map((id) => rowOf(states.get(id)!)))],
        );
        const written = events.flat();
        if (written.length === 0) return events;
        await manager.query(
          `INSERT INTO item_health_events (event_id, item_id, event)
           SELECT (e->'metadata'->>'id')::uuid, e->'data'->>'item_id', e
             FROM jsonb_array_elements($1::jsonb) AS e`,
          [JSON.stringify(written)],
        );
        return events;
      }),
    { maxBatch: 200 },
  );

  /** Stamps events Kafka has. */
  async markPublished(eventIds: readonly string[]): Promise<void> {
    if (eventIds.length === 0) return;
    await this.db.query(
      'UPDATE item_health_events SET published_at = now() WHERE event_id = ANY($1::uuid[])',
      [eventIds],
    );
  }

  /** Events written over `olderThanMs` ago and not stamped, oldest first. */
  async unpublished(olderThanMs: number, limit: number): Promise<HealthEvent[]> {
    const rows = await queryRows<{ event: HealthEvent }>(
      this.db,
      `SELECT event FROM item_health_events
        WHERE published_at IS NULL AND created_at < now() - make_interval(secs => $1)
        ORDER BY created_at LIMIT $2`,
      [olderThanMs / 1000, limit],
    );
    return rows.map((r) => r.event);
  }
}
