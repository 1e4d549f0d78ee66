import { ParallelConsumer } from '@cashflow/kafka';
import type { Kafka } from 'kafkajs';
import { uniqueSuffix } from '../support/infra';
import { createTopics, quietLogger, testKafka } from '../support/kafka';
import { waitFor } from '../support/wait-for';

/**
 * Rebalances move as little as they must: when a third consumer joins a group of two on a topic
 * of 12 partitions, it takes its 4 and the others keep theirs (kafkajs's round robin, ordering
 * members by their random ids, moves 8); when one leaves, only its own move.
 */
describe('sticky rebalances of ParallelConsumer, against the real broker', () => {
  let kafka: Kafka;
  const topic = `test-sticky-${uniqueSuffix()}`;
  const groupId = `g-sticky-${uniqueSuffix()}`;
  const consumers: ParallelConsumer[] = [];

  beforeAll(async () => {
    kafka = testKafka('');
    const admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, [{ topic, numPartitions: 12 }]);
    await admin.disconnect();
  });
  afterAll(async () => {
    await Promise.all(consumers.map((c) => c.stop(2000)));
  });

  async function join(): Promise<ParallelConsumer> {
    const consumer = new ParallelConsumer(
      kafka,
      { groupId, topics: [topic], maxInFlight: 10, sessionTimeoutMs: 10_000, logger: quietLogger },
      () => Promise.resolve(),
    );
    consumers.push(consumer);
    await consumer.start();
    return consumer;
  }

  /** Owner of each partition once the members' shares are `sizes` (a settled rebalance). */
  async function settled(members: ParallelConsumer[], size: number): Promise<Map<number, number>> {
    return waitFor(`each of ${members.length} consumers holding ${size} partitions`, () => {
      if (!members.every((c) => c.assigned.length === size)) return undefined;
      const owners = new Map<number, number>();
      members.forEach((c, i) => c.assigned.forEach((p) => owners.set(p.partition, i)));
      return owners.size === 12 ? owners : undefined;
    });
  }

  const moved = (before: Map<number, number>, after: Map<number, number>) =>
    [...after].filter(([partition, owner]) => before.get(partition) !== owner).length;

  it('moves only the newcomer’s share when a consumer joins, and only the leaver’s when one leaves', async () => {
    const a = await join();
    const b = await join();
    const two = await settled([a, b], 6);

    const c = await join();
    const three = await settled([a, b, c], 4);
    expect(moved(two, three)).toBe(4);

    await b.stop(2000);
    consumers.splice(consumers.indexOf(b), 1);
    const after = await settled([a, c], 6);
    // Renumber as in the new list: a stays 0, c (2) is 1 now, b's partitions had no one left.
    const renumbered = new Map(
      [...three].map(([p, owner]) => [p, owner === 1 ? -1 : owner === 2 ? 1 : owner]),
    );
    expect(moved(renumbered, after)).toBe(4);
  });
});
