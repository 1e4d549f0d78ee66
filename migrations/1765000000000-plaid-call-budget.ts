import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One Plaid budget for the whole deployment (libs/plaid-client/src/shared-call-budget.ts):
 * every worker replica takes its turns for Plaid calls from the same sliding window, so N
 * workers together keep within PLAID_RATE_LIMIT_PER_CLIENT instead of N times it.
 *
 * - plaid_call_turns: one row per call sent within the last window, per budget (an endpoint's
 *   name); rows older than the window are deleted by the next take.
 * - plaid_take_turn(budget, limit, window_ms): takes a turn when fewer than `limit` were taken in
 *   the window, else says how long until one leaves it. Takes of one budget are serialised by a
 *   transaction-scoped advisory lock, and every replica is timed by the database's clock.
 */
export class PlaidCallBudget1765000000000 implements MigrationInterface {
  name = 'PlaidCallBudget1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE plaid_call_turns (
        id       bigserial   PRIMARY KEY,
        budget   text        NOT NULL,
        taken_at timestamptz NOT NULL
      )`);
    await q.query('CREATE INDEX plaid_call_turns_window ON plaid_call_turns (budget, taken_at)');
    await q.query(`
      CREATE FUNCTION plaid_take_turn(p_budget text, p_limit integer, p_window_ms integer)
      RETURNS TABLE (turn bigint, retry_in_ms integer, taken integer)
      LANGUAGE plpgsql AS $$
      DECLARE
        window_length interval := make_interval(secs => p_window_ms / 1000.0);
        now_at timestamptz;
        oldest timestamptz;
      BEGIN
        PERFORM pg_advisory_xact_lock(8212, hashtext(p_budget));
        now_at := clock_timestamp();
        DELETE FROM plaid_call_turns t
         WHERE t.budget = p_budget AND t.taken_at <= now_at - window_length;
        SELECT count(*) INTO taken FROM plaid_call_turns t WHERE t.budget = p_budget;
        IF taken < p_limit THEN
          INSERT INTO plaid_call_turns (budget, taken_at) VALUES (p_budget, now_at)
          RETURNING id INTO turn;
          retry_in_ms := 0;
          taken := taken + 1;
        ELSE
          -- The turn that leaves the window first among those keeping the budget full.
          SELECT t.taken_at INTO oldest FROM plaid_call_turns t
           WHERE t.budget = p_budget ORDER BY t.taken_at OFFSET taken - p_limit LIMIT 1;
          turn := NULL;
          retry_in_ms := greatest(1, ceil(extract(epoch FROM oldest + window_length - now_at) * 1000))::integer;
        END IF;
        RETURN NEXT;
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP FUNCTION plaid_take_turn(text, integer, integer)');
    await q.query('DROP TABLE plaid_call_turns');
  }
}
