import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The role analytics is granted: it can read the stored reports (people's bank transactions),
 * and nothing else. The ops role (cashflow_readonly) is not given these tables.
 */
export const ANALYTICS_ROLE = 'cashflow_analytics';

/** What the analytics role may read. */
export const ANALYTICS_READABLE = [
  'report_accounts',
  'report_transactions',
  'report_insights',
  'report_fetches',
];

/**
 * The report fetcher's tables.
 *
 * - report_fetch_items: per Item, what the fetcher knows and owes (the pure state of
 *   apps/report-fetcher/src/fetch/item-fetches.ts as JSON), when its next fetch is due and who
 *   holds it: one fetch per Item at a time, across processes.
 * - report_fetches: one row per fetch that ended (stored or failed), with the event it publishes
 *   and whether that event and its changelog records are on Kafka yet.
 * - report_accounts, report_transactions, report_insights: the stored report. A transaction row
 *   is its current content as Plaid gave it, when it was first seen and last changed, when it was
 *   removed (null while Plaid still returns it), and the fetch that last changed it
 *   (last_change: added, modified or removed).
 */
export class ReportStore1764600000000 implements MigrationInterface {
  name = 'ReportStore1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE report_fetch_items (
        item_id       text PRIMARY KEY,
        state         jsonb NOT NULL,
        due_at        timestamptz,
        claim_token   uuid,
        claimed_until timestamptz,
        updated_at    timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(
      'CREATE INDEX report_fetch_items_due ON report_fetch_items (due_at) WHERE due_at IS NOT NULL',
    );
    await q.query(`
      CREATE TABLE report_fetches (
        fetch_id                    uuid PRIMARY KEY,
        item_id                     text NOT NULL,
        outcome                     text NOT NULL CHECK (outcome IN ('fetched', 'failed')),
        report_event_id             text NOT NULL,
        report_received_at          timestamptz NOT NULL,
        days_requested              integer NOT NULL,
        refresh_request_ids         text[] NOT NULL,
        window_start                date,
        last_successful_update_time timestamptz,
        pages                       integer,
        restarts                    integer NOT NULL DEFAULT 0,
        accounts                    integer,
        transactions                integer,
        added                       integer,
        modified                    integer,
        removed                     integer,
        error_code                  text,
        error                       jsonb,
        attempts                    integer NOT NULL,
        started_at                  timestamptz NOT NULL,
        finished_at                 timestamptz NOT NULL,
        duration_ms                 integer NOT NULL,
        event                       jsonb NOT NULL,
        changelog_pending           boolean NOT NULL,
        published_at                timestamptz
      )`);
    await q.query(
      'CREATE INDEX report_fetches_by_item ON report_fetches (item_id, finished_at DESC)',
    );
    await q.query(
      'CREATE INDEX report_fetches_unpublished ON report_fetches (item_id, finished_at) WHERE published_at IS NULL',
    );
    await q.query(`
      CREATE TABLE report_accounts (
        item_id       text NOT NULL,
        account_id    text NOT NULL,
        content       jsonb NOT NULL,
        last_fetch_id uuid NOT NULL,
        updated_at    timestamptz NOT NULL,
        PRIMARY KEY (item_id, account_id)
      )`);
    await q.query(`
      CREATE TABLE report_transactions (
        item_id         text NOT NULL,
        transaction_id  text NOT NULL,
        account_id      text NOT NULL,
        date            date NOT NULL,
        amount          numeric NOT NULL,
        pending         boolean NOT NULL,
        content         jsonb NOT NULL,
        first_seen_at   timestamptz NOT NULL,
        last_changed_at timestamptz NOT NULL,
        removed_at      timestamptz,
        first_fetch_id  uuid NOT NULL,
        last_fetch_id   uuid NOT NULL,
        last_change     text NOT NULL CHECK (last_change IN ('added', 'modified', 'removed')),
        PRIMARY KEY (item_id, transaction_id)
      )`);
    await q.query(
      'CREATE INDEX report_transactions_by_date ON report_transactions (item_id, date DESC, transaction_id)',
    );
    await q.query(`
      CREATE TABLE report_insights (
        item_id             text PRIMARY KEY,
        content             jsonb NOT NULL,
        last_generated_time timestamptz,
        last_fetch_id       uuid NOT NULL,
        updated_at          timestamptz NOT NULL
      )`);
    await q.query(`
      COMMENT ON TABLE report_transactions IS 'Each Item''s transactions as of its last fetch (people''s bank transactions: readable by ${ANALYTICS_ROLE} only). removed_at is set when Plaid no longer returns a transaction inside a fetched window.';
      COMMENT ON TABLE report_fetches IS 'One row per fetch of an Item''s Cashflow Report: what it read and what it changed.';
      COMMENT ON TABLE report_fetch_items IS 'The report fetcher''s work per Item: pending acceptances, the fetch wanted, the last one stored, and its claim.';
    `);
    await q.query(`
      DO $$
      BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ANALYTICS_ROLE}') THEN
          BEGIN
            CREATE ROLE ${ANALYTICS_ROLE} NOLOGIN;
          EXCEPTION
            WHEN duplicate_object THEN NULL;
            WHEN insufficient_privilege THEN
              RAISE NOTICE 'role ${ANALYTICS_ROLE} not created (needs CREATEROLE); create it and run migrate again';
          END;
        END IF;
      END $$`);
    await grantAnalytics(q);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DO $$
      BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = '${ANALYTICS_ROLE}') THEN
          EXECUTE 'REVOKE ALL ON ${ANALYTICS_READABLE.join(', ')} FROM ${ANALYTICS_ROLE}';
        END IF;
      END $$`);
    for (const table of [
      'report_insights',
      'report_transactions',
      'report_accounts',
      'report_fetches',
      'report_fetch_items',
    ]) {
      await q.query(`DROP TABLE ${table}`);
    }
  }
}

/** Grants the analytics role what it may read, if the role exists. Safe to run again. */
export async function grantAnalytics(q: { query(sql: string): Promise<unknown> }): Promise<void> {
  await q.query(`
    DO $$
    BEGIN
      IF EXISTS (SELECT FROM pg_roles WHERE rolname = '${ANALYTICS_ROLE}') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO ${ANALYTICS_ROLE}', current_database());
        EXECUTE 'GRANT USAGE ON SCHEMA public TO ${ANALYTICS_ROLE}';
        EXECUTE 'GRANT SELECT ON ${ANALYTICS_READABLE.join(', ')} TO ${ANALYTICS_ROLE}';
      END IF;
    END $$`);
}
