import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Every report of an Item, in a table of its own instead of the 16 most recent in
 * item_refresh_state.recent_reports: an acceptance read long after its report (a catch-up or a
 * rebuild reads the report topic far ahead of the outcomes) must still find it, whatever the
 * Item's history (rule 3 in libs/projection/src/rules/refresh-projection.ts). Filled from the
 * event copies already projected. Rows projected before this migration may hold matches made
 * with the old buffer; `cashflow-refresh projection rebuild` recomputes them.
 */
export class ItemReports1764300000002 implements MigrationInterface {
  name = 'ItemReports1764300000002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE item_reports (
        item_id        text        NOT NULL,
        received_at    timestamptz NOT NULL,
        event_id       text        NOT NULL,
        kind           text        NOT NULL CHECK (kind IN ('ready', 'failed')),
        error_type     text,
        error_code     text,
        error_message  text,
        PRIMARY KEY (item_id, received_at, event_id)
      )`);
    await q.query(`
      COMMENT ON TABLE item_reports IS
        'Internal to the projector: every ReportReady (kind ready) and ReportFailed (kind failed) of each Item, matched against acceptances by received_at.'`);
    await q.query(`
      INSERT INTO item_reports
        (item_id, received_at, event_id, kind, error_type, error_code, error_message)
      SELECT item_id, (data->>'received_at')::timestamptz, event_id,
             CASE event_type WHEN 'ReportReady' THEN 'ready' ELSE 'failed' END,
             data->'error'->>'error_type', data->'error'->>'error_code',
             data->'error'->>'error_message'
        FROM projection_events
       WHERE event_type IN ('ReportReady', 'ReportFailed')
      ON CONFLICT DO NOTHING`);
    await q.query('ALTER TABLE item_refresh_state DROP COLUMN recent_reports');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE item_refresh_state ADD COLUMN recent_reports jsonb NOT NULL DEFAULT '[]'`,
    );
    await q.query('DROP TABLE item_reports');
  }
}
