import { createKafka, partitionKey, readEndOffsets } from '@cashflow/kafka';
import { createLogger } from '@cashflow/observability';
import type { Admin, Consumer, ITopicConfig, Kafka, KafkaMessage } from 'kafkajs';
import { KAFKA_BROKERS, uniqueSuffix } from './infra';
import { waitFor } from './wait-for';

export const quietLogger = createLogger({ service: 'test', level: 'error' });

export function testKafka(prefix: string, brokers: string[] = KAFKA_BROKERS): Kafka {
  return createKafka({
    brokers,
    clientId: 'test',
    topicPrefix: prefix,
    logger: quietLogger,
  });
}

export interface Received {
  readonly topic: string;
  readonly partition: number;
  readonly message: KafkaMessage;
}

/** Reads topics from the beginning into an array, in a consumer group of its own. */
export async function collect(kafka: Kafka, topics: string[]) {
  const received: Received[] = [];
  /** Highest offset received per topic:partition. */
  const highest = new Map<string, bigint>();
  const consumer: Consumer = kafka.consumer({ groupId: `test-reader-${uniqueSuffix()}` });
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    eachMessage: ({ topic, partition, message }) => {
      received.push({ topic, partition, message });
      const key = partitionKey(topic, partition);
      const offset = BigInt(message.offset);
      if (offset > (highest.get(key) ?? -1n)) highest.set(key, offset);
      return Promise.resolve();
    },
  });
  return {
    received,
    /** Resolves with the matching records once `count` of them have arrived. */
    until: (count: number, match: (r: Received) => boolean = () => true, timeoutMs?: number) =>
      waitFor(
        `${count} records on ${topics.join(', ')}`,
        () => {
          const matching = received.filter(match);
          return matching.length >= count ? matching : undefined;
        },
        timeoutMs,
      ),
    /**
     * Resolves once everything written to the topics before the call has been received (every
     * partition read up to its high-water mark as it was then): count after this, never after a
     * fixed sleep.
     */
    async toEnd(timeoutMs?: number): Promise<Received[]> {
      const ends = await readEndOffsets(kafka, topics);
      await waitFor(
        `${topics.join(', ')} read to their end offsets`,
        () =>
          [...ends].every(
            ([key, end]) => end.high === end.low || (highest.get(key) ?? -1n) >= end.high - 1n,
          )
            ? true
            : undefined,
        timeoutMs,
      );
      return received;
    },
    stop: () => consumer.disconnect(),
  };
}

/**
 * Records that consumer group `groupId` has not committed yet, counted up to `ends` (read with
 * readEndOffsets before the wait: what was written by then); 0n once it has them all. `admin`
 * is connected by the caller, who may ask many times.
 */
export async function uncommitted(
  admin: Admin,
  groupId: string,
  ends: Awaited<ReturnType<typeof readEndOffsets>>,
): Promise<bigint> {
  const topics = [...new Set([...ends.keys()].map((key) => key.slice(0, key.lastIndexOf(':'))))];
  const committed = await admin.fetchOffsets({ groupId, topics });
  let behind = 0n;
  for (const { topic, partitions } of committed) {
    for (const p of partitions) {
      const end = ends.get(partitionKey(topic, p.partition))?.high ?? 0n;
      // -1: nothing committed; -2: reset to the earliest offset (kafkajs's resetOffsets).
      const at = BigInt(p.offset) < 0n ? 0n : BigInt(p.offset);
      if (at < end) behind += end - at;
    }
  }
  return behind;
}

/**
 * Creates topics and waits until every partition has a leader. kafkajs's own wait
 * (waitForLeaders) gives up with "does not host this topic-partition" when a busy broker has not
 * yet put the new topic in its metadata (seen with two test files at once); this looks again.
 */
export async function createTopics(admin: Admin, topics: ITopicConfig[]): Promise<void> {
  // kafkajs waits for leaders unless told not to (its default), and that wait is what gives up.
  await admin.createTopics({ topics, waitForLeaders: false });
  const names = topics.map((t) => t.topic);
  await waitFor(
    `leaders for ${names.join(', ')}`,
    async () => {
      const metadata = await admin.fetchTopicMetadata({ topics: names }).catch(() => undefined);
      const led = metadata?.topics.every((t) => t.partitions.every((p) => p.leader >= 0));
      return metadata && metadata.topics.length === names.length && led ? true : undefined;
    },
    30_000,
    100,
  );
}

/** A topic of one partition holding `count` records keyed k0.. with values "0".. */
export async function topicOfNumbers(kafka: Kafka, topic: string, count: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await createTopics(admin, [{ topic, numPartitions: 1 }]);
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic,
    messages: Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: String(i) })),
  });
  await producer.disconnect();
}
