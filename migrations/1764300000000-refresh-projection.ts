import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The projector's tables: per-Item refresh state, one row per refresh request, and a copy of
 * every event consumed. Written only by the projector (apps/projector), from the event log;
 * `cashflow-refresh projection rebuild` recreates them from the topics.
 */
export class RefreshProjection1764300000000 implements MigrationInterface {
  name = 'RefreshProjection1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE item_refresh_state (
        item_id              text        PRIMARY KEY,
        status               text        NOT NULL
                             CHECK (status IN ('requested', 'refreshing', 'ready', 'failed')),
        latest_request_id    text,
        days_requested       integer,
        requested_at         timestamptz,
        accepted_at          timestamptz,
        ready_at             timestamptz,
        failed_at            timestamptz,
        plaid_request_id     text,
        attempts             integer,
        refreshes            integer     NOT NULL DEFAULT 0,
        last_error_source    text,
        last_error_type      text,
        last_error_code      text,
        last_error_message   text,
        last_error_at        timestamptz,
        last_error_event_id  text,
        recent_reports       jsonb       NOT NULL DEFAULT '[]',
        last_event_id        text,
        last_event_topic     text,
        last_event_partition integer,
        last_event_offset    bigint,
        updated_at           timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(
      'CREATE INDEX item_refresh_state_status ON item_refresh_state (status, accepted_at)',
    );
    await q.query(
      'CREATE INDEX item_refresh_state_error_code ON item_refresh_state (last_error_code) WHERE last_error_code IS NOT NULL',
    );
    await q.query(`
      COMMENT ON TABLE item_refresh_state IS
        'One row per Item: the state of its latest refresh request (see apps/projector/src/projection/refresh-projection.ts for the rules).';
      COMMENT ON COLUMN item_refresh_state.status IS
        'requested (no answer yet), refreshing (Plaid accepted, no webhook yet), ready, failed.';
      COMMENT ON COLUMN item_refresh_state.refreshes IS
        'Refreshes whose data became ready (requests coalesced into another are not counted).';
      COMMENT ON COLUMN item_refresh_state.last_error_code IS
        'The newest failure of any request or webhook of the Item, even if a later refresh succeeded.';
      COMMENT ON COLUMN item_refresh_state.recent_reports IS
        'Internal: the newest webhooks received, matched against acceptances that arrive after them.';
      COMMENT ON COLUMN item_refresh_state.last_event_offset IS
        'Position of the last event applied to this row (topic, partition, offset).';
    `);

    await q.query(`
      CREATE TABLE refresh_requests (
        request_id         text        PRIMARY KEY,
        item_id            text        NOT NULL,
        request_partition  integer,
        request_offset     bigint,
        days_requested     integer,
        requested_by       text,
        requested_at       timestamptz,
        status             text        NOT NULL
                           CHECK (status IN ('requested', 'accepted', 'failed', 'ready', 'report_failed')),
        accepted_at        timestamptz,
        ready_at           timestamptz,
        failed_at          timestamptz,
        plaid_request_id   text,
        attempts           integer,
        coalesced_into     text,
        retryable          boolean,
        error_source       text,
        error_type         text,
        error_code         text,
        error_message      text,
        error_event_id     text,
        report_event_id    text,
        seconds_to_accept  numeric GENERATED ALWAYS AS (EXTRACT(EPOCH FROM accepted_at - requested_at)) STORED,
        seconds_to_ready   numeric GENERATED ALWAYS AS (EXTRACT(EPOCH FROM ready_at - accepted_at)) STORED,
        updated_at         timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(
      'CREATE INDEX refresh_requests_item ON refresh_requests (item_id, request_offset DESC NULLS FIRST, request_id)',
    );
    await q.query(
      `CREATE INDEX refresh_requests_waiting ON refresh_requests (item_id) WHERE status = 'accepted'`,
    );
    await q.query(
      `CREATE INDEX refresh_requests_failed ON refresh_requests (failed_at) WHERE failed_at IS NOT NULL`,
    );
    await q.query(`
      COMMENT ON TABLE refresh_requests IS
        'One row per RefreshRequested, with its outcome. A row can exist before its RefreshRequested is read (request_offset null).';
      COMMENT ON COLUMN refresh_requests.status IS
        'requested, accepted (waiting for the webhook), failed (RefreshFailed), ready, report_failed (the webhook carried an error).';
      COMMENT ON COLUMN refresh_requests.coalesced_into IS
        'The request whose Plaid call this one shared, when the worker coalesced them.';
    `);

    await q.query(`
      CREATE TABLE projection_events (
        topic            text        NOT NULL,
        partition        integer     NOT NULL,
        kafka_offset     bigint      NOT NULL,
        event_id         text        NOT NULL,
        event_type       text        NOT NULL,
        item_id          text        NOT NULL,
        event_time       timestamptz NOT NULL,
        kafka_timestamp  timestamptz NOT NULL,
        metadata         jsonb       NOT NULL,
        data             jsonb       NOT NULL,
        projected_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (topic, partition, kafka_offset)
      )`);
    await q.query('CREATE INDEX projection_events_item ON projection_events (item_id, event_time)');
    await q.query('CREATE INDEX projection_events_id ON projection_events (event_id)');
    await q.query(`
      COMMENT ON TABLE projection_events IS
        'Append-only copy of every event the projector consumed, for audit and ad-hoc queries.';
      COMMENT ON COLUMN projection_events.projected_at IS
        'When the projector wrote it; projected_at - kafka_timestamp is the projection lag.';
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE projection_events');
    await q.query('DROP TABLE refresh_requests');
    await q.query('DROP TABLE item_refresh_state');
  }
}
