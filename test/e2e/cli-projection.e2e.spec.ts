import { decodeEvent, topicName, type RefreshRequested } from '@cashflow/contracts';
import { randomUUID } from 'node:crypto';
import { cli } from '../support/cli';
import { KAFKA_BROKERS } from '../support/infra';
import { collect } from '../support/kafka';
import { projectorWorld, type ProjectorWorld } from '../support/projector';
import { eventsFor } from '../support/refresh-histories';

describe('cashflow-refresh projection', () => {
  let world: ProjectorWorld;

  beforeAll(async () => {
    world = await projectorWorld({ partitions: 2 });
  });
  afterAll(async () => {
    await world.close();
  });

  it('rebuild replays the log into the tables, with no projector running', async () => {
    const itemId = `item-${randomUUID()}`;
    const e = eventsFor(itemId);
    await world.publish(e.requested(`${itemId}-r1`));
    await world.publish(e.accepted(`${itemId}-r1`, '2026-11-24T10:00:02Z'));
    await world.publish(e.ready(`${itemId}-x1`, '2026-11-24T10:01:00Z'));

    const run = await cli(['projection', 'rebuild'], {
      KAFKA_BROKERS: KAFKA_BROKERS.join(','),
      KAFKA_TOPIC_PREFIX: world.prefix,
      DATABASE_URL: world.db.url,
    });
    expect(run.stderr).toContain('replayed 3 of 3 events (100%)');
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toMatch(
      /^Rebuilt from 3 events in [\d.]+ s: 1 Items, 1 refresh requests\.\n$/,
    );
    expect(await world.item(itemId)).toMatchObject({ status: 'ready', refreshes: 1 });
    const checkpoints = await world.rows(
      `SELECT sum(next_offset)::int AS n FROM consumer_checkpoints WHERE consumer = 'projector'`,
    );
    expect(checkpoints[0]?.n).toBe(3);
  });

  it('rebuild names the variable when the configuration is invalid', async () => {
    const run = await cli(['projection', 'rebuild'], { KAFKA_BROKERS: KAFKA_BROKERS.join(',') });
    expect(run.code).toBe(78);
    expect(run.stderr).toContain('DATABASE_URL: required');
  });

  describe('refresh, status and list', () => {
    const kafkaEnv = () => ({
      KAFKA_BROKERS: KAFKA_BROKERS.join(','),
      KAFKA_TOPIC_PREFIX: world.prefix,
    });

    it('refresh --wait shows the request through acceptance to the report, and exits 0', async () => {
      const requests = await collect(world.kafka, [topicName('refreshRequested', world.prefix)]);
      const itemId = `item-${randomUUID()}`;
      const running = cli(
        ['refresh', itemId, '--days', '90', '--wait', '--json', '--timeout', '60'],
        kafkaEnv(),
      );
      const [record] = await requests.until(1, (r) => r.message.key?.toString() === itemId);
      await requests.stop();
      const decoded = decodeEvent(record!.message);
      if (!decoded.ok) throw new Error(decoded.error.message);
      const request = decoded.value as RefreshRequested;
      expect(request.data).toMatchObject({ item_id: itemId, days_requested: 90 });

      const e = eventsFor(itemId);
      const acceptedAt = new Date().toISOString();
      // A report for this Item from before the acceptance must not count.
      await world.publish(e.ready(`${itemId}-old`, new Date(Date.now() - 60_000).toISOString()));
      await world.publish(e.accepted(request.metadata.id, acceptedAt));
      await world.publish(e.ready(`${itemId}-x1`, new Date(Date.now() + 1000).toISOString()));
      const run = await running;
      expect(run.code).toBe(0);
      const steps = run.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { step: string; request_id: string });
      expect(steps.map((s) => s.step)).toEqual(['requested', 'accepted', 'ready']);
      expect(steps.every((s) => s.request_id === request.metadata.id)).toBe(true);
    });

    it('refresh --wait exits 3 with the error when the refresh fails; bad --days is refused', async () => {
      const requests = await collect(world.kafka, [topicName('refreshRequested', world.prefix)]);
      const itemId = `item-${randomUUID()}`;
      const running = cli(['refresh', itemId, '--wait', '--timeout', '60'], kafkaEnv());
      const [record] = await requests.until(1, (r) => r.message.key?.toString() === itemId);
      await requests.stop();
      const decoded = decodeEvent(record!.message);
      if (!decoded.ok) throw new Error(decoded.error.message);
      await world.publish(
        eventsFor(itemId).failed(decoded.value.metadata.id, new Date().toISOString()),
      );
      const run = await running;
      expect(run.code).toBe(3);
      expect(run.stdout).toMatch(/failed\s+error_code=ITEM_LOGIN_REQUIRED/);

      const bad = await cli(['refresh', itemId, '--days', '900'], kafkaEnv());
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('--days: must be an integer from 1 to 730');
    });

    it('status and list read the projection through the read API', async () => {
      const projector = await world.startProjector();
      try {
        const itemId = `item-${randomUUID()}`;
        const e = eventsFor(itemId);
        await world.publish(e.requested(`${itemId}-r1`));
        await world.publish(
          e.failed(`${itemId}-r1`, new Date().toISOString(), 'PRODUCTS_NOT_SUPPORTED'),
        );
        await world.until(
          'the failure',
          'SELECT status FROM item_refresh_state WHERE item_id = $1',
          [itemId],
          (rows) => rows[0]?.status === 'failed',
        );
        const env = { PROJECTOR_URL: projector.url, PROJECTOR_API_TOKEN: world.token };
        const status = await cli(['status', itemId], env);
        expect(status.code).toBe(0);
        expect(status.stdout).toContain(`${itemId}: failed`);
        expect(status.stdout).toContain('last error PRODUCTS_NOT_SUPPORTED (plaid)');
        expect(status.stdout).toMatch(new RegExp(`${itemId}-r1\\s+failed`));

        const listed = await cli(['list', '--error-code', 'PRODUCTS_NOT_SUPPORTED', '--json'], env);
        expect(listed.code).toBe(0);
        const page = JSON.parse(listed.stdout) as { items: { item_id: string }[] };
        expect(page.items.map((i) => i.item_id)).toEqual([itemId]);

        const unknown = await cli(['status', `item-${randomUUID()}`], env);
        expect(unknown.code).toBe(1);
        expect(unknown.stderr).toMatch(/^error: no refresh state for item /);
        const noToken = await cli(['status', itemId], { PROJECTOR_URL: projector.url });
        expect(noToken.code).toBe(1);
        expect(noToken.stderr).toContain('PROJECTOR_API_TOKEN is not set');
      } finally {
        await projector.close();
      }
    });
  });
});
