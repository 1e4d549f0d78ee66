import type { MigrationInterface, QueryRunner } from 'typeorm';
import { grantSelectToReadOnly } from './1764300000001-ops-views';

/**
 * Recovery when Plaid's webhook never comes (rule 9 of
 * apps/report-fetcher/src/fetch/item-fetches.ts, rule 13 of
 * libs/projection/src/rules/refresh-projection.ts).
 *
 * - report_polls: the report fetcher's polls of /cashflow_report/get for overdue refreshes that
 *   ended in something to publish: `found` (a ReportReady found by polling) or `overdue` (a
 *   ReportOverdue, polling given up), with the event and whether it is on Kafka yet. Ops may
 *   read it (no token, no transaction in it).
 * - The projection: requests and Items can be `overdue`; a request keeps when the fetcher gave
 *   up on it (overdue_at); each report keeps how it was found (found_by).
 */
export class MissedWebhooks1764800000000 implements MigrationInterface {
  name = 'MissedWebhooks1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE report_polls (
        poll_id                     uuid        PRIMARY KEY,
        item_id                     text        NOT NULL,
        outcome                     text        NOT NULL CHECK (outcome IN ('found', 'overdue')),
        refresh_request_ids         text[]      NOT NULL,
        polls                       integer     NOT NULL,
        plaid_request_id            text,
        last_successful_update_time timestamptz,
        error_code                  text,
        finished_at                 timestamptz NOT NULL,
        event                       jsonb       NOT NULL,
        published_at                timestamptz
      )`);
    await q.query(
      'CREATE INDEX report_polls_unpublished ON report_polls (item_id, finished_at) WHERE published_at IS NULL',
    );
    await q.query('CREATE INDEX report_polls_by_item ON report_polls (item_id, finished_at DESC)');
    await q.query(`
      COMMENT ON TABLE report_polls IS
        'The report fetcher''s polls for refreshes whose webhook did not come: found (a ReportReady found by polling) or overdue (ReportOverdue: given up).';
      COMMENT ON COLUMN report_polls.polls IS
        '/cashflow_report/get calls made for these requests since they became overdue.';
      COMMENT ON COLUMN report_polls.plaid_request_id IS
        'request_id of Plaid''s answer that showed the data (found), or of the last answer (overdue).';
      COMMENT ON COLUMN report_polls.published_at IS
        'When its event reached Kafka (null: not yet).';
    `);

    await q.query(`
      ALTER TABLE refresh_requests
        DROP CONSTRAINT refresh_requests_status_check,
        ADD CONSTRAINT refresh_requests_status_check
            CHECK (status IN ('requested', 'accepted', 'failed', 'ready', 'report_failed', 'overdue')),
        ADD COLUMN overdue_at timestamptz`);
    // A report still completes an overdue request: the projector loads those a batch's reports
    // answer.
    await q.query(
      `CREATE INDEX refresh_requests_overdue ON refresh_requests (item_id, accepted_at) WHERE status = 'overdue'`,
    );
    await q.query(`
      ALTER TABLE item_refresh_state
        DROP CONSTRAINT item_refresh_state_status_check,
        ADD CONSTRAINT item_refresh_state_status_check
            CHECK (status IN ('requested', 'refreshing', 'ready', 'failed', 'overdue'))`);
    await q.query(`
      ALTER TABLE item_reports
        ADD COLUMN found_by text NOT NULL DEFAULT 'webhook' CHECK (found_by IN ('webhook', 'polling'))`);
    await q.query(`
      COMMENT ON COLUMN refresh_requests.overdue_at IS
        'When the report fetcher gave up waiting for this request''s report (ReportOverdue); the status is overdue unless a report came after all.';
      COMMENT ON COLUMN item_reports.found_by IS
        'webhook: Plaid''s CASHFLOW_REPORT_READY; polling: the report fetcher found the data when no webhook came.';
    `);
    // Acceptances already waiting for a report get their first poll scheduled: the fetcher
    // claims such an Item at once and, releasing it, sets its real due time.
    await q.query(`
      UPDATE report_fetch_items SET due_at = now()
       WHERE due_at IS NULL AND jsonb_array_length(state->'pending') > 0`);
    await grantPolls(q);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE item_reports DROP COLUMN found_by');
    await q.query(`UPDATE item_refresh_state SET status = 'refreshing' WHERE status = 'overdue'`);
    await q.query(`UPDATE refresh_requests SET status = 'accepted' WHERE status = 'overdue'`);
    await q.query('DROP INDEX refresh_requests_overdue');
    await q.query(`
      ALTER TABLE item_refresh_state
        DROP CONSTRAINT item_refresh_state_status_check,
        ADD CONSTRAINT item_refresh_state_status_check
            CHECK (status IN ('requested', 'refreshing', 'ready', 'failed'))`);
    await q.query(`
      ALTER TABLE refresh_requests
        DROP COLUMN overdue_at,
        DROP CONSTRAINT refresh_requests_status_check,
        ADD CONSTRAINT refresh_requests_status_check
            CHECK (status IN ('requested', 'accepted', 'failed', 'ready', 'report_failed'))`);
    await q.query('DROP TABLE report_polls');
  }
}

/** Grants the read-only (ops) role report_polls, if the role exists. Safe to run again. */
export function grantPolls(q: { query(sql: string): Promise<unknown> }): Promise<void> {
  return grantSelectToReadOnly(q, ['report_polls']);
}
