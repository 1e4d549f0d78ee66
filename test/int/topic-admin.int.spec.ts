import { loggerInto } from '../support/logs';
import { TOPIC_KEYS, topicName } from '@cashflow/contracts';
import { createKafka, ensureTopics } from '@cashflow/kafka';
import { ConfigResourceTypes, ConfigSource, type Kafka } from 'kafkajs';
import { KAFKA_BROKERS, uniqueTopicPrefix } from '../support/infra';
import { createTopics } from '../support/kafka';

/** A Kafka client whose log lines (kafkajs's and the library's) the test can read. */
function kafkaWithLog(prefix: string) {
  const lines: string[] = [];
  const logger = loggerInto(lines, 'test', 'warn');
  const kafka = createKafka({
    brokers: KAFKA_BROKERS,
    clientId: 'test',
    topicPrefix: prefix,
    logger,
  });
  return { kafka, lines };
}

async function minInsyncReplicas(kafka: Kafka, topics: string[]) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: topics.map((name) => ({
        type: ConfigResourceTypes.TOPIC,
        name,
        configNames: ['min.insync.replicas'],
      })),
    });
    return new Map(
      resources.map((r) => {
        const entry = r.configEntries.find((e) => e.configName === 'min.insync.replicas');
        return [r.resourceName, { value: entry?.configValue, source: entry?.configSource }];
      }),
    );
  } finally {
    await admin.disconnect();
  }
}

/**
 * "200 only with acks from all in-sync replicas" means little if one replica is enough to be
 * "all": topics are created with min.insync.replicas = min(2, replication factor), set on the
 * topic rather than left to whatever the brokers default to.
 */
describe('ensureTopics: min.insync.replicas', () => {
  it('sets min.insync.replicas on every topic it creates (1 with one replica)', async () => {
    const prefix = uniqueTopicPrefix();
    const { kafka } = kafkaWithLog(prefix);
    const report = await ensureTopics(kafka, { prefix, partitions: 1, replicationFactor: 1 });
    const topics = TOPIC_KEYS.map((key) => topicName(key, prefix));
    expect(report.created.sort()).toEqual([...topics].sort());

    const configs = await minInsyncReplicas(kafka, topics);
    for (const topic of topics) {
      expect({ topic, ...configs.get(topic) }).toEqual({
        topic,
        value: '1',
        source: ConfigSource.TOPIC_CONFIG,
      });
    }
  });

  it('warns about an existing topic whose min.insync.replicas differs, and leaves it alone', async () => {
    const prefix = uniqueTopicPrefix();
    const { kafka, lines } = kafkaWithLog(prefix);
    const odd = topicName('refreshOutcomes', prefix);
    const plain = topicName('refreshRequested', prefix);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await createTopics(admin, [
        // One replica, yet two required: every acks=all write would be refused.
        {
          topic: odd,
          numPartitions: 1,
          replicationFactor: 1,
          configEntries: [{ name: 'min.insync.replicas', value: '2' }],
        },
        // The broker's default (1 here) already is min(2, 1).
        { topic: plain, numPartitions: 1, replicationFactor: 1 },
      ]);
    } finally {
      await admin.disconnect();
    }

    const report = await ensureTopics(kafka, { prefix, partitions: 1, replicationFactor: 1 });
    expect(report.existing.sort()).toEqual([odd, plain].sort());
    expect(report.minInsyncMismatched).toEqual([
      { topic: odd, minInsyncReplicas: 2, expected: 1, replicationFactor: 1 },
    ]);
    const warnings = lines.filter((l) => l.includes('min.insync.replicas'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(odd);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 'warn' });
    expect((await minInsyncReplicas(kafka, [odd])).get(odd)?.value).toBe('2');
  });
});

describe('ensureTopics: the configs the project sets', () => {
  it('warns about an existing topic whose timestamp type differs (requests stamped by their producer), and leaves it alone', async () => {
    const prefix = uniqueTopicPrefix();
    const { kafka, lines } = kafkaWithLog(prefix);
    const requested = topicName('refreshRequested', prefix);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await createTopics(admin, [{ topic: requested, numPartitions: 1 }]);
    } finally {
      await admin.disconnect();
    }
    const report = await ensureTopics(kafka, { prefix, partitions: 1, replicationFactor: 1 });
    expect(report.configMismatched).toContainEqual({
      topic: requested,
      config: 'message.timestamp.type',
      value: 'CreateTime',
      expected: 'LogAppendTime',
    });
    expect(lines.join('')).toContain(`${requested} has message.timestamp.type=CreateTime`);
    // Created by ensureTopics itself: nothing differs.
    expect(report.configMismatched.filter((m) => m.topic !== requested)).toEqual([]);
  });
});
