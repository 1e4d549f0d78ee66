import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Error codes that only the Item's user can clear (by re-linking or granting access). */
export const USER_ACTION_CODES = [
  'ITEM_LOGIN_REQUIRED',
  'PENDING_EXPIRATION',
  'INVALID_CREDENTIALS',
  'INVALID_MFA',
  'ITEM_LOCKED',
  'USER_SETUP_REQUIRED',
  'INSUFFICIENT_CREDENTIALS',
  'ACCESS_NOT_GRANTED',
  'NO_ACCOUNTS',
  'ADDITIONAL_CONSENT_REQUIRED',
  'USER_PERMISSION_REVOKED',
];

/** The role ops are granted: it can read the projection and its views, and nothing else. */
export const READ_ONLY_ROLE = 'cashflow_readonly';

const READABLE = [
  'item_refresh_state',
  'refresh_requests',
  'projection_events',
  'ops_stuck_refreshes',
  'ops_failures_by_code',
  'ops_refresh_latency',
  'ops_items_needing_action',
];

/**
 * Views for the questions ops ask of the projection, and the read-only role. Creating the role
 * needs CREATEROLE; without it the migration says so (NOTICE) and a database administrator
 * creates the role (`CREATE ROLE cashflow_readonly NOLOGIN`) and runs migrate again.
 */
export class OpsViews1764300000001 implements MigrationInterface {
  name = 'OpsViews1764300000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION stuck_refreshes(older_than interval)
      RETURNS TABLE (item_id text, latest_request_id text, plaid_request_id text,
                     accepted_at timestamptz, waiting interval)
      LANGUAGE sql STABLE AS $$
        SELECT item_id, latest_request_id, plaid_request_id, accepted_at, now() - accepted_at
          FROM item_refresh_state
         WHERE status = 'refreshing' AND accepted_at < now() - older_than
         ORDER BY accepted_at
      $$`);
    await q.query(`
      COMMENT ON FUNCTION stuck_refreshes(interval) IS
        'Items Plaid accepted a refresh for longer ago than older_than with no webhook since: Plaid may never deliver.'`);
    await q.query(
      `CREATE VIEW ops_stuck_refreshes AS SELECT * FROM stuck_refreshes(interval '30 minutes')`,
    );
    await q.query(`
      CREATE VIEW ops_failures_by_code AS
      SELECT error_source, error_type, error_code,
             count(*) FILTER (WHERE failed_at > now() - interval '1 hour') AS last_hour,
             count(*) FILTER (WHERE failed_at > now() - interval '1 day')  AS last_day,
             count(*)                                                        AS last_7_days,
             count(DISTINCT item_id)                                         AS items_7_days,
             max(failed_at)                                                  AS last_seen
        FROM refresh_requests
       WHERE failed_at > now() - interval '7 days' AND error_code IS NOT NULL
       GROUP BY error_source, error_type, error_code
       ORDER BY last_7_days DESC`);
    await q.query(`
      CREATE VIEW ops_refresh_latency AS
      SELECT date_trunc('day', requested_at) AS day,
             count(*) AS requests,
             percentile_cont(0.5)  WITHIN GROUP (ORDER BY seconds_to_accept) AS accept_p50_s,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds_to_accept) AS accept_p99_s,
             percentile_cont(0.5)  WITHIN GROUP (ORDER BY seconds_to_ready)  AS ready_p50_s,
             percentile_cont(0.9)  WITHIN GROUP (ORDER BY seconds_to_ready)  AS ready_p90_s,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds_to_ready)  AS ready_p99_s
        FROM refresh_requests
       WHERE requested_at > now() - interval '30 days'
       GROUP BY 1
       ORDER BY 1 DESC`);
    const codes = USER_ACTION_CODES.map((c) => `'${c}'`).join(', ');
    await q.query(`
      CREATE VIEW ops_items_needing_action AS
      SELECT item_id, last_error_code, last_error_type, last_error_message, last_error_at,
             status, latest_request_id
        FROM item_refresh_state
       WHERE status = 'failed' AND last_error_code IN (${codes})
       ORDER BY last_error_at DESC`);
    await q.query(`
      COMMENT ON VIEW ops_stuck_refreshes IS 'stuck_refreshes(30 minutes); call the function for another threshold.';
      COMMENT ON VIEW ops_failures_by_code IS 'Failed requests (RefreshFailed and failure webhooks) of the last 7 days by error code.';
      COMMENT ON VIEW ops_refresh_latency IS 'Per day, last 30 days: seconds from request to acceptance and from acceptance to the webhook.';
      COMMENT ON VIEW ops_items_needing_action IS 'Items whose last refresh failed with an error only the user can clear.';
    `);
    await q.query(`
      DO $$
      BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${READ_ONLY_ROLE}') THEN
          BEGIN
            CREATE ROLE ${READ_ONLY_ROLE} NOLOGIN;
          EXCEPTION
            WHEN duplicate_object THEN NULL;
            WHEN insufficient_privilege THEN
              RAISE NOTICE 'role ${READ_ONLY_ROLE} not created (needs CREATEROLE); create it and run migrate again';
          END;
        END IF;
      END $$`);
    await grantReadOnly(q);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DO $$
      BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = '${READ_ONLY_ROLE}') THEN
          EXECUTE 'REVOKE ALL ON ${READABLE.join(', ')} FROM ${READ_ONLY_ROLE}';
          EXECUTE 'REVOKE EXECUTE ON FUNCTION stuck_refreshes(interval) FROM ${READ_ONLY_ROLE}';
        END IF;
      END $$`);
    for (const view of READABLE.filter((name) => name.startsWith('ops_')).reverse()) {
      await q.query(`DROP VIEW ${view}`);
    }
    await q.query('DROP FUNCTION stuck_refreshes(interval)');
  }
}

/** Grants the read-only role what it may read, if the role exists. Safe to run again. */
export async function grantReadOnly(q: { query(sql: string): Promise<unknown> }): Promise<void> {
  await q.query(`
    DO $$
    BEGIN
      IF EXISTS (SELECT FROM pg_roles WHERE rolname = '${READ_ONLY_ROLE}') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO ${READ_ONLY_ROLE}', current_database());
        EXECUTE 'GRANT USAGE ON SCHEMA public TO ${READ_ONLY_ROLE}';
        EXECUTE 'GRANT SELECT ON ${READABLE.join(', ')} TO ${READ_ONLY_ROLE}';
        EXECUTE 'GRANT EXECUTE ON FUNCTION stuck_refreshes(interval) TO ${READ_ONLY_ROLE}';
      END IF;
    END $$`);
}

/** Grants the read-only role SELECT on `relations`, if the role exists. Safe to run again. */
export async function grantSelectToReadOnly(
  q: { query(sql: string): Promise<unknown> },
  relations: readonly string[],
): Promise<void> {
  await q.query(`
    DO $$
    BEGIN
      IF EXISTS (SELECT FROM pg_roles WHERE rolname = '${READ_ONLY_ROLE}') THEN
        EXECUTE 'GRANT SELECT ON ${relations.join(', ')} TO ${READ_ONLY_ROLE}';
      END IF;
    END $$`);
}
