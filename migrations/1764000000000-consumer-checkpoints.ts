import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Consumer checkpoints: the next offset to read per consumer, topic and partition, written in the
 * same transaction as whatever the consumer derived from the records before it. On start a
 * consumer seeks here, so redelivery after a crash changes nothing.
 */
export class ConsumerCheckpoints1764000000000 implements MigrationInterface {
  name = 'ConsumerCheckpoints1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE consumer_checkpoints (
        consumer     text        NOT NULL,
        topic        text        NOT NULL,
        partition    integer     NOT NULL CHECK (partition >= 0),
        next_offset  bigint      NOT NULL CHECK (next_offset >= 0),
        updated_at   timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, topic, partition)
      )`);
    await q.query(
      `COMMENT ON TABLE consumer_checkpoints IS 'Next Kafka offset (last applied + 1) per consumer, topic and partition.'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE consumer_checkpoints');
  }
}
