import { createDataSource, runMigrations } from '@cashflow/persistence';
import { SharedCallBudget } from '@cashflow/plaid-client';
import type { DataSource } from 'typeorm';
import { createTestDatabase, type TestDatabase } from '../support/infra';

/**
 * One Plaid budget for the whole deployment: three replicas, each with a connection of its own,
 * take their turns from one window in the real PostgreSQL.
 */
describe('SharedCallBudget against the real PostgreSQL', () => {
  let db: TestDatabase;
  const replicas: DataSource[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    await runMigrations({ url: db.url, applicationName: 'test' });
    for (let i = 0; i < 3; i += 1) {
      replicas.push(
        await createDataSource({ url: db.url, applicationName: `replica-${i}` }).initialize(),
      );
    }
    await replicas[0]!.query(`
      CREATE TABLE turns_taken (budget text, taken_at timestamptz);
      CREATE FUNCTION copy_turn() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO turns_taken VALUES (NEW.budget, NEW.taken_at); RETURN NEW; END $$;
      CREATE TRIGGER copy_turn AFTER INSERT ON plaid_call_turns
        FOR EACH ROW EXECUTE FUNCTION copy_turn();`);
  });
  afterAll(async () => {
    for (const replica of replicas) await replica.destroy();
    await db.drop();
  });

  /**
   * Every turn ever taken of `budget`, as the database timed it, oldest first (ms since the
   * epoch). The table forgets turns older than the window, so a trigger of the test's copies each.
   */
  async function takenTimes(budget: string): Promise<number[]> {
    const rows = await replicas[0]!.query<{ taken_at: Date }[]>(
      'SELECT taken_at FROM turns_taken WHERE budget = $1 ORDER BY taken_at',
      [budget],
    );
    return rows.map((r) => r.taken_at.getTime());
  }

  /** Turns of `budget` in its window now (given back ones are gone). */
  async function inWindow(budget: string): Promise<number> {
    const [row] = await replicas[0]!.query<{ n: string }[]>(
      'SELECT count(*) AS n FROM plaid_call_turns WHERE budget = $1',
      [budget],
    );
    return Number(row!.n);
  }

  it('lets three replicas together take no more than the limit in any window', async () => {
    const rate = { limit: 10, windowMs: 1_000 };
    const budgets = replicas.map((r) => new SharedCallBudget(r, { name: 'together', rate }));
    const started = Date.now();
    // Each replica wants 15 turns at once: 45 in all, the limit allows 10 a second.
    await Promise.all(budgets.flatMap((b) => Array.from({ length: 15 }, () => b.take())));
    const elapsed = Date.now() - started;

    const times = await takenTimes('together');
    expect(times).toHaveLength(45);
    // No window holds more than the limit: the 11th turn after any turn is a window later.
    for (let i = rate.limit; i < times.length; i += 1) {
      expect(times[i]! - times[i - rate.limit]!).toBeGreaterThanOrEqual(rate.windowMs);
    }
    // 45 turns at 10 a second need four windows after the first ten. (How much of the allowed
    // rate replicas reach is measured by bench:worker, not asserted on time here.)
    expect(elapsed).toBeGreaterThanOrEqual(4 * rate.windowMs);
  }, 30_000);

  it('keeps separate budgets apart, and lets a turn given back be taken by another replica', async () => {
    const rate = { limit: 2, windowMs: 60_000 };
    const [a, b] = replicas.map((r) => new SharedCallBudget(r, { name: 'given-back', rate }));
    const other = new SharedCallBudget(replicas[2]!, { name: 'other-endpoint', rate });
    const first = await a!.take();
    await a!.take();
    // The window is full for this budget, not for another.
    await other.take();
    const waiting = b!.take();
    const soon = await Promise.race([
      waiting.then(() => 'taken'),
      new Promise((r) => setTimeout(() => r('still waiting'), 300)),
    ]);
    expect(soon).toBe('still waiting');
    await a!.release(first);
    // The refusal told the waiting replica when to ask again: when the oldest turn leaves the
    // window, a minute away. A turn given back frees its place for the next ask.
    const asked = new SharedCallBudget(replicas[1]!, { name: 'given-back', rate });
    await expect(asked.take()).resolves.toEqual(expect.any(Number));
    expect(await inWindow('given-back')).toBe(2);
    expect(b!.room(Date.now())).toBe(0);
    b!.close();
    await expect(waiting).rejects.toThrow('the Plaid call budget is closed');
  }, 30_000);
});
