import type { Kafka } from 'kafkajs';

/**
 * The end of each partition of `topics` now (the offset the next record will get), keyed
 * `topic:partition`. A consumer that has read a partition to its end stores this as its next
 * offset. Kept here until libs/kafka has its own.
 */
export async function topicEndOffsets(
  kafka: Kafka,
  topics: readonly string[],
): Promise<Map<string, bigint>> {
  const ends = new Map<string, bigint>();
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) {
        ends.set(`${topic}:${p.partition}`, BigInt(p.high));
      }
    }
  } finally {
    await admin.disconnect();
  }
  return ends;
}
