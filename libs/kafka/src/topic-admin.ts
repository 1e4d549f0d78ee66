import { TOPICS, TOPIC_KEYS, topicName } from '@cashflow/contracts';
import type { Kafka } from 'kafkajs';

export interface TopicLayout {
  readonly prefix: string;
  readonly partitions: number;
  readonly replicationFactor: number;
}

export interface EnsureTopicsReport {
  readonly created: string[];
  readonly existing: string[];
  /** Existing topics whose partition count differs from the layout; never changed automatically. */
  readonly mismatched: { topic: string; partitions: number; expected: number }[];
}

/**
 * Creates the project's topics with a stated partition count, replication factor and infinite
 * retention. Idempotent: existing topics are left as they are and reported.
 */
export async function ensureTopics(kafka: Kafka, layout: TopicLayout): Promise<EnsureTopicsReport> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const wanted = TOPIC_KEYS.map((key) => ({ key, name: topicName(key, layout.prefix) }));
    const present = new Set(await admin.listTopics());
    const missing = wanted.filter((t) => !present.has(t.name));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((t) => ({
          topic: t.name,
          numPartitions: layout.partitions,
          replicationFactor: layout.replicationFactor,
          configEntries: Object.entries(TOPICS[t.key].configs).map(([name, value]) => ({
            name,
            value,
          })),
        })),
      });
    }
    const existing = wanted.filter((t) => present.has(t.name)).map((t) => t.name);
    const mismatched: EnsureTopicsReport['mismatched'] = [];
    if (existing.length > 0) {
      const metadata = await admin.fetchTopicMetadata({ topics: existing });
      for (const topic of metadata.topics) {
        if (topic.partitions.length !== layout.partitions) {
          mismatched.push({
            topic: topic.name,
            partitions: topic.partitions.length,
            expected: layout.partitions,
          });
        }
      }
    }
    return { created: missing.map((t) => t.name), existing, mismatched };
  } finally {
    await admin.disconnect();
  }
}

/** Fails with a clear message when a topic is missing (the apps never auto-create topics). */
export async function assertTopicsExist(kafka: Kafka, topics: readonly string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const present = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !present.has(t));
    if (missing.length > 0) {
      throw new Error(
        `missing Kafka topics ${missing.join(', ')}: create them with \`cashflow-refresh topics create\``,
      );
    }
  } finally {
    await admin.disconnect();
  }
}
