import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Claims of parked calls carry a token: only the claim's holder may renew, finish or reschedule
 * it, so a claim taken over after its lease cannot be finished twice.
 *
 * A parked call can now also hold requests that joined it while its retry was at Plaid and were
 * not answered by it: they wait as a call of their own, not yet attempted (attempts 0, no error).
 */
export class RefreshRetryClaims1764500000000 implements MigrationInterface {
  name = 'RefreshRetryClaims1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE refresh_retries ADD COLUMN claim_token uuid`);
    await q.query(`ALTER TABLE refresh_retries DROP CONSTRAINT refresh_retries_attempts_check`);
    await q.query(
      `ALTER TABLE refresh_retries ADD CONSTRAINT refresh_retries_attempts_check CHECK (attempts >= 0)`,
    );
    await q.query(`ALTER TABLE refresh_retries ALTER COLUMN last_error DROP NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      `UPDATE refresh_retries SET attempts = greatest(attempts, 1),
         last_error = coalesce(last_error, '{"source":"worker","error_code":"NOT_ATTEMPTED","error_message":"not attempted yet"}')`,
    );
    await q.query(`ALTER TABLE refresh_retries ALTER COLUMN last_error SET NOT NULL`);
    await q.query(`ALTER TABLE refresh_retries DROP CONSTRAINT refresh_retries_attempts_check`);
    await q.query(
      `ALTER TABLE refresh_retries ADD CONSTRAINT refresh_retries_attempts_check CHECK (attempts >= 1)`,
    );
    await q.query(`ALTER TABLE refresh_retries DROP COLUMN claim_token`);
  }
}
