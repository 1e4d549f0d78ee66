import type { ItemHealthRestored, ItemNeedsAttention } from '@cashflow/contracts';
import { queryRows } from '@cashflow/persistence';
import type { DataSource } from 'typeorm';
import { Batched } from '../refresh/batched';
import { changeEvent, type ItemFact } from './health-events';
import { decide, initialItemHealth, type Health, type ItemHealth } from './item-health';

export type HealthEvent = ItemNeedsAttention | ItemHealthRestored;

/** An item_health row. */
export interface HealthRow {
  item_id: string;
  status: Health['status'];
  reason: string | null;
  consent_expires_at: Date | string | null;
  as_of: Date | string | null;
}

const iso = (value: Date | string | null) =>
  value === null ? null : new Date(value).toISOString();

/** The decider's state from an item_health row (the initial state without one). */
export function healthOf(itemId: string, row: HealthRow | null | undefined): ItemHealth {
  if (!row) return initialItemHealth(itemId);
  const health: Health =
    row.status === 'healthy'
      ? { status: 'healthy' }
      : row.status === 'consent_expiring'
        ? { status: 'consent_expiring', expiresAt: iso(row.consent_expires_at)! }
        : row.status === 'revoked'
          ? { status: 'revoked', reason: row.reason as 'USER_PERMISSION_REVOKED' }
          : { status: 'needs_user_action', reason: row.reason ?? 'UNKNOWN' };
  return { itemId, health, asOf: iso(row.as_of) };
}

function rowOf(state: ItemHealth): HealthRow {
  const h = state.health;
  return {
    item_id: state.itemId,
    status: h.status,
    reason: h.status === 'needs_user_action' || h.status === 'revoked' ? h.reason : null,
    consent_expires_at: h.status === 'consent_expiring' ? h.expiresAt : null,
    as_of: state.asOf,
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
  constructor(private readonly db: DataSource) {}

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
          'SELECT item_id, status, reason, consent_expires_at, as_of FROM item_health WHERE item_id = ANY($1)',
          [itemIds],
        );
        const states = new Map(itemIds.map((id) => [id, healthOf(id, undefined)]));
        for (const row of rows) states.set(row.item_id, healthOf(row.item_id, row));
        const changed = new Set<string>();
        const events = facts.map((fact) => {
          const before = states.get(fact.itemId)!;
          const decided = decide(before, fact.fact);
          if (!decided.change) return [];
          states.set(fact.itemId, decided.state);
          changed.add(fact.itemId);
          return [changeEvent(decided.change, fact, before.health, decided.state.health)];
        });
        if (changed.size === 0) return events;
        await manager.query(
          `INSERT INTO item_health (item_id, status, reason, consent_expires_at, as_of)
           SELECT item_id, status, reason, consent_expires_at, as_of
             FROM jsonb_to_recordset($1::jsonb) AS h(item_id text, status text, reason text,
                  consent_expires_at timestamptz, as_of timestamptz)
           ON CONFLICT (item_id) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason,
             consent_expires_at = EXCLUDED.consent_expires_at, as_of = EXCLUDED.as_of,
             updated_at = now()`,
          [JSON.stringify([...changed].map((id) => rowOf(states.get(id)!)))],
        );
        const written = events.flat();
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
