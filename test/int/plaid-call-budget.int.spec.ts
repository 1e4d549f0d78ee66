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
      CREATE TABLE turns_granted (budget text, bucket bigint, turns integer);
      CREATE FUNCTION log_grant() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO turns_granted
          VALUES (NEW.budget, NEW.bucket, NEW.turns - coalesce(OLD.turns, 0));
          RETURN NEW;
        END $$;
      CREATE TRIGGER log_grant AFTER INSERT OR UPDATE ON plaid_call_budget
        FOR EACH ROW EXECUTE FUNCTION log_grant();`);
  });
  afterAll(async () => {
    for (const replica of replicas) await replica.destroy();
    await db.drop();
  });

  /**
   * Every grant of `budget`, oldest first: the bucket the function made it in (by its own clock)
   * and how many turns. The table keeps counts per bucket, so a trigger of the test's logs each
   * change of a count.
   */
  async function grants(budget: string): Promise<{ bucket: number; turns: number }[]> {
    const rows = await replicas[0]!.query<{ bucket: string; turns: number }[]>(
      'SELECT bucket, turns FROM turns_granted WHERE budget = $1 AND turns > 0 ORDER BY bucket',
      [budget],
    );
    return rows.map((r) => ({ bucket: Number(r.bucket), turns: r.turns }));
  }

  /** Turns of `budget` counted now (those given back are not). */
  async function counted(budget: string): Promise<number> {
    const [row] = await replicas[0]!.query<{ n: string }[]>(
      'SELECT coalesce(sum(turns), 0) AS n FROM plaid_call_budget WHERE budget = $1',
      [budget],
    );
    return Number(row!.n);
  }

  it('lets three replicas together take no more than the limit in any window', async () => {
    const rate = { limit: 10, windowMs: 1_000 };
    const errors: unknown[] = [];
    const budgets = replicas.map(
      (r) => new SharedCallBudget(r, { name: 'together', rate, onError: (e) => errors.push(e) }),
    );
    const started = Date.now();
    // Each replica wants 15 turns at once: 45 in all, the limit allows 10 a second.
    await Promise.all(budgets.flatMap((b) => Array.from({ length: 15 }, () => b.take())));
    const elapsed = Date.now() - started;

    expect(errors).toEqual([]);
    const granted = await grants('together');
    expect(granted.reduce((sum, g) => sum + g.turns, 0)).toBe(45);
    // No window holds more than the limit, in the function's own time (a time taken outside it,
    // by a trigger say, lags its decision by as much as a loaded machine delays it). Buckets are
    // whole milliseconds, a sixtieth of the window rounded down; a grant is still counted by
    // every take made up to `reach` buckets later, whenever in its bucket that take runs.
    const bucketMs = Math.floor(rate.windowMs / 60);
    const reach = Math.ceil((rate.windowMs + 1) / bucketMs) - 1;
    for (const first of granted) {
      const inWindow = granted.filter(
        (g) => g.bucket >= first.bucket && g.bucket <= first.bucket + reach,
      );
      expect(inWindow.reduce((sum, g) => sum + g.turns, 0)).toBeLessThanOrEqual(rate.limit);
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
    expect(await counted('given-back')).toBe(2);
    expect(b!.room(Date.now())).toBe(0);
    b!.close();
    await expect(waiting).rejects.toThrow('the Plaid call budget is closed');
  }, 30_000);
});
