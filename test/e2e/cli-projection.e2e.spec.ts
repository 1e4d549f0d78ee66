import { randomUUID } from 'node:crypto';
import { cli } from '../support/cli';
import { KAFKA_BROKERS } from '../support/infra';
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
});
