import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A projected request is its Item's: CloudEvents ids are unique per source only, so two
 * upstream services may send the same id for two Items. Keyed by (item_id, request_id), the
 * second never overwrites the first Item's row (the worker refuses the second to the dead-letter
 * topic; the projection shows it as requested, never answered).
 */
export class RefreshRequestsByItem1764500000002 implements MigrationInterface {
  name = 'RefreshRequestsByItem1764500000002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE refresh_requests DROP CONSTRAINT refresh_requests_pkey`);
    await q.query(`ALTER TABLE refresh_requests ADD PRIMARY KEY (item_id, request_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE refresh_requests DROP CONSTRAINT refresh_requests_pkey`);
    await q.query(`ALTER TABLE refresh_requests ADD PRIMARY KEY (request_id)`);
  }
}
