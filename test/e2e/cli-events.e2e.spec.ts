import { topicName } from '@cashflow/contracts';
import { randomUUID } from 'node:crypto';
import { cli } from '../support/cli';
import { KAFKA_BROKERS } from '../support/infra';
import { projectorWorld, type ProjectorWorld } from '../support/projector';
import { eventsFor } from '../support/refresh-histories';
import { waitFor } from '../support/wait-for';

describe('cashflow-refresh events and dlq', () => {
  let world: ProjectorWorld;
  let env: Record<string, string>;

  beforeAll(async () => {
    world = await projectorWorld({ partitions: 2 });
    env = { KAFKA_BROKERS: KAFKA_BROKERS.join(','), KAFKA_TOPIC_PREFIX: world.prefix };
  });
  afterAll(async () => {
    await world.close();
  });

  it('events tail prints one Item’s events across the topics', async () => {
    const itemId = `item-${randomUUID()}`;
    const other = eventsFor(`item-${randomUUID()}`);
    const e = eventsFor(itemId);
    await world.publish(e.requested(`${itemId}-r1`), other.requested('someone-else'));
    await world.publish(e.accepted(`${itemId}-r1`, '2026-11-24T10:00:02Z'));
    await world.publish(e.ready(`${itemId}-x1`, '2026-11-24T10:01:00Z'));
    const run = await cli(
      ['events', 'tail', '--from-beginning', '--item', itemId, '--count', '3'],
      env,
    );
    expect(run.code).toBe(0);
    const types = run.stdout
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/)[1]);
    expect(types.sort()).toEqual(['RefreshAccepted', 'RefreshRequested', 'ReportReady']);
    expect(run.stdout).toContain(`plaid_request_id=plaid-${itemId}-r1`);
  });

  it('dlq list shows why a record was rejected; dlq replay sends it back to its topic', async () => {
    expect((await cli(['dlq', 'list'], env)).stdout).toBe('the dead-letter topic is empty\n');
    const producer = world.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: topicName('refreshRequested', world.prefix),
      messages: [{ key: 'bad-record', value: '{"item_id": 42}' }],
    });
    await producer.disconnect();
    const projector = await world.startProjector();
    try {
      const listed = await waitFor('the dead letter', async () => {
        const run = await cli(['dlq', 'list', '--json'], env);
        return run.stdout.trim() ? run : undefined;
      });
      const [entry] = listed.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, string>);
      expect(entry).toMatchObject({ consumer: 'projector', error_code: 'MISSING_HEADER' });
      expect(entry!.source).toContain(topicName('refreshRequested', world.prefix));

      const replay = await cli(['dlq', 'replay', entry!.id!], env);
      expect(replay.code).toBe(0);
      expect(replay.stdout).toBe(
        `replayed ${entry!.id} to ${topicName('refreshRequested', world.prefix)}\n`,
      );
      // Replayed unchanged, the projector rejects it again: a second dead letter.
      await waitFor('the second dead letter', async () => {
        const run = await cli(['dlq', 'list', '--json'], env);
        return run.stdout.trim().split('\n').length === 2 ? true : undefined;
      });
      const text = await cli(['dlq', 'list'], env);
      expect(text.stdout).toMatch(/^id\s+time\s+consumer\s+source\s+error_code\s+reason/);

      const unknown = await cli(['dlq', 'replay', '0:999999'], env);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('not on the dead-letter topic: 0:999999');
    } finally {
      await projector.close();
    }
  });

  it('topics lag shows, per consumer group and partition, what the group has not yet committed', async () => {
    const topic = topicName('refreshRequested', world.prefix);
    const group = `${world.prefix}cashflow-projector`;
    const requests = () =>
      Array.from({ length: 3 }, () => {
        const itemId = `item-${randomUUID()}`;
        return { itemId, event: eventsFor(itemId).requested(`${itemId}-r1`) };
      });
    const first = requests();
    await world.publish(...first.map((r) => r.event));
    const projector = await world.startProjector();
    try {
      for (const r of first) await world.untilStatus(r.itemId, 'requested');
    } finally {
      await projector.close(); // commits what it applied
    }
    const lagOf = async () => {
      const run = await cli(['topics', 'lag', '--json'], env);
      expect(run.code).toBe(0);
      const rows = run.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { group: string; topic: string; lag: number });
      const ours = rows.filter((r) => r.group === group && r.topic === topic);
      expect(ours.length).toBe(2); // both partitions
      return ours.reduce((sum, r) => sum + r.lag, 0);
    };
    expect(await lagOf()).toBe(0);

    // Three more while the projector is stopped: three behind.
    await world.publish(...requests().map((r) => r.event));
    expect(await lagOf()).toBe(3);
    const text = await cli(['topics', 'lag'], env);
    expect(text.stdout).toMatch(/^group\s+topic\s+partition\s+committed\s+end\s+lag/);
    expect(text.stdout).toContain(`${group}: 3 behind`);
  });
});
