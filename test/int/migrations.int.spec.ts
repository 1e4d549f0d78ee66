import { runMigrations } from '@cashflow/persistence';
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
      'RefreshRetryClaims1764500000000',
      'RefreshRequestIds1764500000001',
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
        'item_refresh_state',
        'migrations',
        'projection_events',
        'refresh_outcomes',
        'refresh_request_ids',
        'refresh_requests',
        'refresh_retries',
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
});
