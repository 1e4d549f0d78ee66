import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Which request a request id belongs to. CloudEvents ids are unique per source only, so two
 * upstream services may send the same ce_id; the worker answers the first (source, Item) it saw
 * under an id and refuses the others to the dead-letter topic (REQUEST_ID_CONFLICT), rather than
 * answer them with another request's outcome. Requests answered before this table existed are
 * known by their Item only (source NULL).
 */
export class RefreshRequestIds1764500000001 implements MigrationInterface {
  name = 'RefreshRequestIds1764500000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE refresh_request_ids (
        request_id    text        PRIMARY KEY,
        item_id       text        NOT NULL,
        source        text,
        first_seen_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      INSERT INTO refresh_request_ids (request_id, item_id, source, first_seen_at)
      SELECT request_id, item_id, NULL, recorded_at FROM refresh_outcomes`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE refresh_request_ids');
  }
}
