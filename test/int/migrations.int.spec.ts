import { createDataSource, runMigrations } from '@cashflow/persistence';
import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/infra';

describe('migrations against the real PostgreSQL', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('creates the schema on an empty database, then has nothing left to apply', async () => {
    const first = await runMigrations({ url: db.url, applicationName: 'test' });
    expect(first.applied).toEqual([
      'ConsumerCheckpoints1764000000000',
      'ItemAccessTokens1764100000000',
      'RefreshWorkerState1764200000000',
      'RefreshProjection1764300000000',
      'OpsViews1764300000001',
      'ItemReports1764300000002',
      'RefreshRetryClaims1764500000000',
      'RefreshRequestIds1764500000001',
      'RefreshRequestsByItem1764500000002',
      'ReportStore1764600000000',
      'ReportFetchProjection1764700000000',
      'MissedWebhooks1764800000000',
      'ItemHealth1764900000000',
      'PlaidCallBudget1765000000000',
      'ProjectionItemLocks1765100000000',
    ]);

    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      const tables = await client.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`,
      );
      expect(tables.rows.map((r) => r.table_name)).toEqual([
        'consumer_checkpoints',
        'item_access_tokens',
        'item_health',
        'item_health_events',
        'item_refresh_state',
        'item_reports',
        'migrations',
        'plaid_call_budget',
        'projection_events',
        'projection_item_locks',
        'refresh_outcomes',
        'refresh_request_ids',
        'refresh_requests',
        'refresh_retries',
        'report_accounts',
        'report_fetch_items',
        'report_fetches',
        'report_insights',
        'report_polls',
        'report_transactions',
      ]);

      await client.query(
        `INSERT INTO consumer_checkpoints (consumer, topic, partition, next_offset) VALUES ('p', 't', 0, 42)`,
      );
      await expect(
        client.query(
          `INSERT INTO consumer_checkpoints (consumer, topic, partition, next_offset) VALUES ('p', 't', 1, -1)`,
        ),
      ).rejects.toThrow(/check constraint/);
    } finally {
      await client.end();
    }

    const second = await runMigrations({ url: db.url, applicationName: 'test' });
    expect(second.applied).toEqual([]);
  });

  it('grants the read roles again on every migrate, so a role a DBA creates later gets its tables', async () => {
    await runMigrations({ url: db.url, applicationName: 'test' });
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      // As when the roles did not exist yet at the migration (no CREATEROLE).
      await client.query('REVOKE ALL ON report_transactions FROM cashflow_analytics');
      await client.query('REVOKE ALL ON item_refresh_state FROM cashflow_readonly');
      await runMigrations({ url: db.url, applicationName: 'test' });
      const can = async (role: string, table: string) =>
        (
          await client.query<{ ok: boolean }>(
            `SELECT has_table_privilege($1, $2, 'SELECT') AS ok`,
            [role, table],
          )
        ).rows[0]!.ok;
      expect(await can('cashflow_analytics', 'report_transactions')).toBe(true);
      expect(await can('cashflow_readonly', 'item_refresh_state')).toBe(true);
      // Least privilege: ops see refresh state, not bank transactions.
      expect(await can('cashflow_readonly', 'report_transactions')).toBe(false);
      expect(await can('cashflow_analytics', 'item_access_tokens')).toBe(false);
    } finally {
      await client.end();
    }
  });

  it('gives every Item already projected its lock row', async () => {
    const ds = await createDataSource({ url: db.url, applicationName: 'test' }).initialize();
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      await runMigrations({ url: db.url, applicationName: 'test' });
      // Back to before projection_item_locks existed (undoing the migrations after it too).
      const applied = async () =>
        (
          await client.query(
            `SELECT 1 FROM migrations WHERE name = 'ProjectionItemLocks1765100000000'`,
          )
        ).rowCount;
      while (await applied()) await ds.undoLastMigration({ transaction: 'each' });
      await client.query(
        `INSERT INTO item_refresh_state (item_id, status) VALUES ('item-l1', 'requested'),
           ('item-l2', 'ready') ON CONFLICT DO NOTHING`,
      );
      const again = await runMigrations({ url: db.url, applicationName: 'test' });
      expect(again.applied[0]).toBe('ProjectionItemLocks1765100000000');
      const rows = await client.query(
        `SELECT item_id FROM projection_item_locks WHERE item_id LIKE 'item-l%' ORDER BY 1`,
      );
      expect(rows.rows).toEqual([{ item_id: 'item-l1' }, { item_id: 'item-l2' }]);
    } finally {
      await client.end();
      await ds.destroy();
    }
  });

  it('fills item_reports from the report copies projected before it existed', async () => {
    const ds = await createDataSource({ url: db.url, applicationName: 'test' }).initialize();
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      // Back to before item_reports existed (undoing the migrations after it too).
      const applied = async () =>
        (await client.query(`SELECT 1 FROM migrations WHERE name = 'ItemReports1764300000002'`))
          .rowCount;
      while (await applied()) await ds.undoLastMigration({ transaction: 'each' });
      const copy = (offset: number, type: string, id: string, data: object) =>
        client.query(
          `INSERT INTO projection_events (topic, partition, kafka_offset, event_id, event_type,
             item_id, event_time, kafka_timestamp, metadata, data)
           VALUES ('t', 0, $1, $2, $3, 'item-m', now(), now(), '{}', $4)`,
          [offset, id, type, JSON.stringify(data)],
        );
      await copy(0, 'ReportReady', 'x1', { received_at: '2026-11-24T10:00:03.000Z' });
      await copy(1, 'ReportReady', 'x1', { received_at: '2026-11-24T10:00:03.000Z' });
      await copy(2, 'ReportFailed', 'x2', {
        received_at: '2026-11-24T10:05:00.000Z',
        error: {
          error_type: 'ITEM_ERROR',
          error_code: 'PRODUCT_NOT_READY',
          error_message: 'not yet',
        },
      });
      await copy(3, 'RefreshRequested', 'r1', {});
      const again = await runMigrations({ url: db.url, applicationName: 'test' });
      expect(again.applied[0]).toBe('ItemReports1764300000002');
      const rows = await client.query(
        `SELECT event_id, kind, received_at, error_code FROM item_reports ORDER BY received_at`,
      );
      expect(rows.rows).toEqual([
        {
          event_id: 'x1',
          kind: 'ready',
          received_at: new Date('2026-11-24T10:00:03Z'),
          error_code: null,
        },
        {
          event_id: 'x2',
          kind: 'failed',
          received_at: new Date('2026-11-24T10:05:00Z'),
          error_code: 'PRODUCT_NOT_READY',
        },
      ]);
    } finally {
      await client.end();
      await ds.destroy();
    }
  });
});
