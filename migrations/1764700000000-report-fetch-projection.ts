import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The projection follows the report fetcher's events (rules 10 to 12 in
 * libs/projection/src/rules/refresh-projection.ts): per Item its newest fetch and newest fetch
 * failure, per request when its data was first fetched. The projector reads the report-fetches
 * topic from its beginning once it runs with these columns, so rows already projected gain their
 * fetches without a rebuild.
 */
export class ReportFetchProjection1764700000000 implements MigrationInterface {
  name = 'ReportFetchProjection1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE item_refresh_state
        ADD COLUMN fetched_at                  timestamptz,
        ADD COLUMN last_fetch_id               text,
        ADD COLUMN last_successful_update_time timestamptz,
        ADD COLUMN transaction_count           integer,
        ADD COLUMN fetch_failed_at             timestamptz,
        ADD COLUMN failed_fetch_id             text,
        ADD COLUMN fetch_error_code            text,
        ADD COLUMN fetch_error_message         text`);
    await q.query(`
      ALTER TABLE refresh_requests
        ADD COLUMN fetched_at         timestamptz,
        ADD COLUMN seconds_to_fetched numeric
            GENERATED ALWAYS AS (EXTRACT(EPOCH FROM fetched_at - requested_at)) STORED`);
    await q.query(`
      COMMENT ON COLUMN item_refresh_state.fetched_at IS
        'When the Item''s newest ReportFetched stored its report (null: never fetched).';
      COMMENT ON COLUMN item_refresh_state.last_fetch_id IS
        'fetch_id of that ReportFetched.';
      COMMENT ON COLUMN item_refresh_state.last_successful_update_time IS
        'Plaid''s last_successful_update_time as of that fetch: how fresh the stored data is.';
      COMMENT ON COLUMN item_refresh_state.transaction_count IS
        'Transactions Plaid returned for that fetch''s window.';
      COMMENT ON COLUMN item_refresh_state.fetch_failed_at IS
        'When the Item''s newest ReportFetchFailed failed, even if a later fetch succeeded: the last fetch failed when this is after fetched_at.';
      COMMENT ON COLUMN item_refresh_state.fetch_error_code IS
        'That failure''s error code (Plaid''s, or the fetcher''s such as DATA_KEPT_CHANGING).';
      COMMENT ON COLUMN refresh_requests.fetched_at IS
        'When the first ReportFetched naming this request stored its data.';
      COMMENT ON COLUMN refresh_requests.seconds_to_fetched IS
        'From the request to its data stored: fetched_at - requested_at.';
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      'ALTER TABLE refresh_requests DROP COLUMN seconds_to_fetched, DROP COLUMN fetched_at',
    );
    await q.query(`
      ALTER TABLE item_refresh_state
        DROP COLUMN fetched_at,
        DROP COLUMN last_fetch_id,
        DROP COLUMN last_successful_update_time,
        DROP COLUMN transaction_count,
        DROP COLUMN fetch_failed_at,
        DROP COLUMN failed_fetch_id,
        DROP COLUMN fetch_error_code,
        DROP COLUMN fetch_error_message`);
  }
}
