import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The refresh worker's durable state.
 *
 * refresh_outcomes is an outbox: every outcome event is recorded before it is published (so a
 * redelivered request is answered from here, without a second Plaid call) and stamped when Kafka
 * has it; a relay publishes rows left unstamped by a crash.
 *
 * refresh_retries holds at most one waiting Plaid call per Item: the request that made it, the
 * requests coalesced into it, and when to try again. It survives restarts and is claimed with a
 * lease, so any worker process can run it.
 */
export class RefreshWorkerState1764200000000 implements MigrationInterface {
  name = 'RefreshWorkerState1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE refresh_outcomes (
        request_id   text        PRIMARY KEY,
        item_id      text        NOT NULL,
        event_id     text        NOT NULL,
        outcome_type text        NOT NULL CHECK (outcome_type IN ('RefreshAccepted', 'RefreshFailed')),
        event        jsonb       NOT NULL,
        recorded_at  timestamptz NOT NULL DEFAULT now(),
        published_at timestamptz
      )`);
    await q.query(
      `CREATE INDEX refresh_outcomes_unpublished ON refresh_outcomes (recorded_at) WHERE published_at IS NULL`,
    );
    await q.query(`
      CREATE TABLE refresh_retries (
        item_id        text        PRIMARY KEY,
        leader         jsonb       NOT NULL,
        followers      jsonb       NOT NULL DEFAULT '[]',
        days_requested integer     NOT NULL CHECK (days_requested BETWEEN 1 AND 730),
        attempts       integer     NOT NULL CHECK (attempts >= 1),
        last_error     jsonb       NOT NULL,
        due_at         timestamptz NOT NULL,
        claimed_until  timestamptz,
        created_at     timestamptz NOT NULL DEFAULT now(),
        updated_at     timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX refresh_retries_due ON refresh_retries (due_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE refresh_retries');
    await q.query('DROP TABLE refresh_outcomes');
  }
}
