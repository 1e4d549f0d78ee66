import type { MigrationInterface, QueryRunner } from 'typeorm';
import { grantSelectToReadOnly } from './1764300000001-ops-views';

/**
 * Item health (apps/refresh-worker/src/health/item-health.ts; rule 14 of
 * libs/projection/src/rules/refresh-projection.ts).
 *
 * - item_health: the refresh worker's own state, one row per Item it heard anything of: the
 *   health its refusals rest on, and the time of the fact behind it.
 * - item_health_events: the worker's outbox of health changes (ItemNeedsAttention,
 *   ItemHealthRestored), written with the change and stamped once Kafka has the event.
 * - The projection: each Item's health as the worker's events tell it (an Item known from its
 *   health alone has no refresh status yet: status null), and ops_item_health, the Items that
 *   are not healthy (read-only role).
 */
export class ItemHealth1764900000000 implements MigrationInterface {
  name = 'ItemHealth1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE item_health (
        item_id            text        PRIMARY KEY,
        status             text        NOT NULL
                           CHECK (status IN ('healthy', 'consent_expiring', 'needs_user_action', 'revoked')),
        reason             text,
        consent_expires_at timestamptz,
        facts              jsonb       NOT NULL,
        sequence           integer     NOT NULL DEFAULT 0,
        updated_at         timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE item_health_events (
        event_id     uuid        PRIMARY KEY,
        item_id      text        NOT NULL,
        event        jsonb       NOT NULL,
        created_at   timestamptz NOT NULL DEFAULT now(),
        published_at timestamptz
      )`);
    await q.query(
      'CREATE INDEX item_health_events_unpublished ON item_health_events (created_at) WHERE published_at IS NULL',
    );
    await q.query(`
      COMMENT ON TABLE item_health IS
        'The refresh worker''s view of each Item''s health (from Item webhooks and its own refresh answers); refreshes of needs_user_action and revoked Items are refused without a Plaid call.';
      COMMENT ON COLUMN item_health.facts IS
        'The latest fact of each kind (user error, revocation, expiring consent, accepted refresh, LOGIN_REPAIRED, token registered): the health is a function of these, whatever order they were read in.';
      COMMENT ON COLUMN item_health.sequence IS
        'Health changes published so far (the sequence of the latest ItemNeedsAttention / ItemHealthRestored).';
      COMMENT ON TABLE item_health_events IS
        'Outbox of health changes (ItemNeedsAttention, ItemHealthRestored); published_at is null until Kafka has the event.';
    `);

    // An Item can be known from its health alone (an Item webhook before any refresh): no
    // refresh status yet.
    await q.query(`
      ALTER TABLE item_refresh_state
        ALTER COLUMN status DROP NOT NULL,
        ADD COLUMN health_status text NOT NULL DEFAULT 'healthy'
            CHECK (health_status IN ('healthy', 'consent_expiring', 'needs_user_action', 'revoked')),
        ADD COLUMN health_reason      text,
        ADD COLUMN consent_expires_at timestamptz,
        ADD COLUMN health_changed_at  timestamptz,
        ADD COLUMN health_sequence    integer,
        ADD COLUMN health_event_id    text`);
    await q.query(
      `CREATE INDEX item_refresh_state_unhealthy ON item_refresh_state (health_status) WHERE health_status <> 'healthy'`,
    );
    await q.query(`
      COMMENT ON COLUMN item_refresh_state.health_status IS
        'healthy, consent_expiring (access ends at consent_expires_at), needs_user_action (health_reason: the Plaid error) or revoked; from the refresh worker''s ItemNeedsAttention / ItemHealthRestored.';
      COMMENT ON COLUMN item_refresh_state.health_changed_at IS
        'When the fact behind the Item''s latest health change happened; null if it never changed.';
    `);
    await q.query(`
      CREATE VIEW ops_item_health AS
      SELECT item_id, health_status, health_reason, consent_expires_at, health_changed_at,
             status, latest_request_id
        FROM item_refresh_state
       WHERE health_status <> 'healthy'
       ORDER BY health_changed_at DESC`);
    await q.query(`
      COMMENT ON VIEW ops_item_health IS
        'Items that are not healthy: their user must act (needs_user_action, revoked: refreshes are refused) or their consent expires soon.'`);
    await grantItemHealth(q);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP VIEW ops_item_health');
    await q.query('DROP INDEX item_refresh_state_unhealthy');
    await q.query('DELETE FROM item_refresh_state WHERE status IS NULL');
    await q.query(`
      ALTER TABLE item_refresh_state
        ALTER COLUMN status SET NOT NULL,
        DROP COLUMN health_status,
        DROP COLUMN health_reason,
        DROP COLUMN consent_expires_at,
        DROP COLUMN health_changed_at,
        DROP COLUMN health_sequence,
        DROP COLUMN health_event_id`);
    await q.query('DROP TABLE item_health_events');
    await q.query('DROP TABLE item_health');
  }
}

/** Grants the read-only (ops) role ops_item_health, if the role exists. Safe to run again. */
export function grantItemHealth(q: { query(sql: string): Promise<unknown> }): Promise<void> {
  return grantSelectToReadOnly(q, ['ops_item_health']);
}
