import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One Plaid budget for the whole deployment (libs/plaid-client/src/shared-call-budget.ts):
 * every worker replica takes its turns for Plaid calls from the same sliding window, so N
 * workers together keep within PLAID_RATE_LIMIT_PER_CLIENT instead of N times it.
 *
 * - plaid_call_budget: per budget (an endpoint's name), the turns taken in each sixtieth of the
 *   window (a bucket; at most 61 rows a budget, whatever the limit). A bucket counts whole while
 *   any part of it is inside the window, so a turn counts for at least a full window: no window
 *   ever holds more than the limit, at the cost of up to a sixtieth of a window's turns.
 * - plaid_take_turns(budget, limit, window_ms, wanted): grants up to `wanted` turns, as many as
 *   the window has room for, all in the current bucket (the turn's id for giving it back), and,
 *   when it grants fewer, how long until the window has room again. Takes of one budget are
 *   serialised by a transaction-scoped advisory lock, and every replica is timed by the
 *   database's clock.
 */
export class PlaidCallBudget1765000000000 implements MigrationInterface {
  name = 'PlaidCallBudget1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE plaid_call_budget (
        budget text    NOT NULL,
        bucket bigint  NOT NULL,
        turns  integer NOT NULL CHECK (turns >= 0),
        PRIMARY KEY (budget, bucket)
      )`);
    await q.query(`
      CREATE FUNCTION plaid_take_turns(
        p_budget text, p_limit integer, p_window_ms integer, p_wanted integer)
      RETURNS TABLE (turn_bucket bigint, granted integer, taken integer, retry_in_ms integer)
      LANGUAGE plpgsql AS $$
      DECLARE
        bucket_ms bigint := greatest(1, p_window_ms / 60);
        now_ms bigint;
        first_counted bigint;
        leaving bigint;
      BEGIN
        PERFORM pg_advisory_xact_lock(8212, hashtext(p_budget));
        now_ms := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
        turn_bucket := now_ms / bucket_ms;
        first_counted := (now_ms - p_window_ms) / bucket_ms;
        DELETE FROM plaid_call_budget b WHERE b.budget = p_budget AND b.bucket < first_counted;
        SELECT coalesce(sum(b.turns), 0) INTO taken FROM plaid_call_budget b
         WHERE b.budget = p_budget;
        granted := least(p_wanted, greatest(0, p_limit - taken));
        IF granted > 0 THEN
          INSERT INTO plaid_call_budget AS b (budget, bucket, turns)
          VALUES (p_budget, turn_bucket, granted)
          ON CONFLICT (budget, bucket) DO UPDATE SET turns = b.turns + granted;
          taken := taken + granted;
        END IF;
        retry_in_ms := 0;
        IF granted < p_wanted THEN
          -- The oldest bucket whose leaving makes room for one more turn.
          SELECT s.bucket INTO leaving FROM (
            SELECT b.bucket, sum(b.turns) OVER (ORDER BY b.bucket) AS running
              FROM plaid_call_budget b WHERE b.budget = p_budget) s
           WHERE s.running >= taken - p_limit + 1 ORDER BY s.bucket LIMIT 1;
          retry_in_ms := greatest(1, (leaving + 1) * bucket_ms + p_window_ms - now_ms)::integer;
        END IF;
        RETURN NEXT;
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP FUNCTION plaid_take_turns(text, integer, integer, integer)');
    await q.query('DROP TABLE plaid_call_budget');
  }
}
