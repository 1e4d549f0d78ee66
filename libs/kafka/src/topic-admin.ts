import { TOPICS, TOPIC_KEYS, topicName, type TopicKey } from '@cashflow/contracts';
import { ConfigResourceTypes, type Admin, type Kafka } from 'kafkajs';

const MIN_INSYNC_REPLICAS = 'min.insync.replicas';

/**
 * How many replicas must have a record before acks=all counts it written: 2 (so an acknowledged
 * record survives the loss of one disk) unless the topic has a single replica, where 2 could
 * never be met and every write would be refused.
 */
export function minInsyncReplicasFor(replicationFactor: number): number {
  return Math.min(2, replicationFactor);
}

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
  /**
   * Existing topics whose min.insync.replicas differs from min(2, their replication factor);
   * logged as warnings, never changed automatically.
   */
  readonly minInsyncMismatched: {
    topic: string;
    minInsyncReplicas: number;
    expected: number;
    replicationFactor: number;
  }[];
  /**
   * Existing topics whose other configs (libs/contracts TOPICS: retention, timestamp type)
   * differ from what the project sets; logged as warnings, never changed automatically.
   */
  readonly configMismatched: { topic: string; config: string; value: string; expected: string }[];
}

/**
 * Creates the project's topics with a stated partition count, replication factor,
 * min.insync.replicas (see minInsyncReplicasFor) and infinite retention. Idempotent: existing
 * topics are left as they are and reported; a differing min.insync.replicas is also logged as a
 * warning through the Kafka client's logger.
 */
export async function ensureTopics(kafka: Kafka, layout: TopicLayout): Promise<EnsureTopicsReport> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const wanted = TOPIC_KEYS.map((key) => ({ key, name: topicName(key, layout.prefix) }));
    const present = new Set(await admin.listTopics());
    const missing = wanted.filter((t) => !present.has(t.name));
    if (missing.length > 0) {
      const create = (names: ReadonlySet<string>) =>
        admin.createTopics({
          waitForLeaders: true,
          topics: missing
            .filter((t) => names.has(t.name))
            .map((t) => ({
              topic: t.name,
              numPartitions: layout.partitions,
              replicationFactor: layout.replicationFactor,
              configEntries: Object.entries({
                ...TOPICS[t.key].configs,
                [MIN_INSYNC_REPLICAS]: String(minInsyncReplicasFor(layout.replicationFactor)),
              }).map(([name, value]) => ({ name, value })),
            })),
        });
      // Waiting for the new partitions' leaders can fail while a busy broker is still electing
      // them ("does not host this topic-partition"): wait a little and look again; topics
      // already created are not created twice.
      for (let attempt = 1; ; attempt++) {
        try {
          await create(new Set(missing.map((t) => t.name)));
          break;
        } catch (error) {
          if (attempt >= 5 || !notHostedYet(error)) throw error;
          await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
        }
      }
    }
    const existing = wanted.filter((t) => present.has(t.name)).map((t) => t.name);
    const mismatched: EnsureTopicsReport['mismatched'] = [];
    const replicas = new Map<string, number>();
    if (existing.length > 0) {
      const metadata = await admin.fetchTopicMetadata({ topics: existing });
      for (const topic of metadata.topics) {
        replicas.set(topic.name, Math.max(0, ...topic.partitions.map((p) => p.replicas.length)));
        if (topic.partitions.length !== layout.partitions) {
          mismatched.push({
            topic: topic.name,
            partitions: topic.partitions.length,
            expected: layout.partitions,
          });
        }
      }
    }
    const minInsyncMismatched = await differingMinInsync(admin, replicas);
    const configMismatched = await differingConfigs(
      admin,
      wanted.filter((t) => present.has(t.name)),
    );
    const log = kafka.logger().namespace('TopicAdmin');
    for (const m of configMismatched) {
      log.warn(
        `${m.topic} has ${m.config}=${m.value}, expected ${m.expected}; left unchanged (kafka-configs.sh --alter --entity-type topics --entity-name ${m.topic} --add-config ${m.config}=${m.expected})`,
        m,
      );
    }
    for (const m of minInsyncMismatched) {
      log.warn(
        `${m.topic} has ${MIN_INSYNC_REPLICAS}=${m.minInsyncReplicas}, expected ${m.expected} for ${m.replicationFactor} replica(s); left unchanged (kafka-configs.sh --alter --entity-type topics --entity-name ${m.topic} --add-config ${MIN_INSYNC_REPLICAS}=${m.expected})`,
        m,
      );
    }
    return {
      created: missing.map((t) => t.name),
      existing,
      mismatched,
      minInsyncMismatched,
      configMismatched,
    };
  } finally {
    await admin.disconnect();
  }
}

/**
 * Existing topics whose min.insync.replicas is not min(2, replicas). Judged by the replicas the
 * topic has, not by KAFKA_REPLICATION_FACTOR: what protects a record is the topic as it is.
 */
async function differingMinInsync(
  admin: Admin,
  replicas: ReadonlyMap<string, number>,
): Promise<EnsureTopicsReport['minInsyncMismatched']> {
  if (replicas.size === 0) return [];
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [...replicas.keys()].map((name) => ({
      type: ConfigResourceTypes.TOPIC,
      name,
      configNames: [MIN_INSYNC_REPLICAS],
    })),
  });
  const differing: EnsureTopicsReport['minInsyncMismatched'] = [];
  for (const resource of resources) {
    const entry = resource.configEntries.find((e) => e.configName === MIN_INSYNC_REPLICAS);
    const replicationFactor = replicas.get(resource.resourceName) ?? 0;
    if (!entry || replicationFactor === 0) continue;
    const expected = minInsyncReplicasFor(replicationFactor);
    if (Number(entry.configValue) !== expected) {
      differing.push({
        topic: resource.resourceName,
        minInsyncReplicas: Number(entry.configValue),
        expected,
        replicationFactor,
      });
    }
  }
  return differing;
}

/** Existing topics whose configs differ from those the project creates them with. */
async function differingConfigs(
  admin: Admin,
  topics: readonly { key: TopicKey; name: string }[],
): Promise<EnsureTopicsReport['configMismatched']> {
  if (topics.length === 0) return [];
  const expectedOf = new Map(topics.map((t) => [t.name, TOPICS[t.key].configs]));
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: topics.map((t) => ({
      type: ConfigResourceTypes.TOPIC,
      name: t.name,
      configNames: Object.keys(TOPICS[t.key].configs),
    })),
  });
  const differing: EnsureTopicsReport['configMismatched'] = [];
  for (const resource of resources) {
    const expected = expectedOf.get(resource.resourceName) ?? {};
    for (const [config, value] of Object.entries(expected)) {
      const entry = resource.configEntries.find((e) => e.configName === config);
      if (entry && entry.configValue !== value) {
        differing.push({
          topic: resource.resourceName,
          config,
          value: entry.configValue,
          expected: value,
        });
      }
    }
  }
  return differing;
}

/**
 * Fails with a clear message when a topic is missing (the apps never auto-create topics). A topic
 * missing from the broker's answer is asked about again a few times, a second apart, before
 * start-up fails: a broker that has just started (or a topic just created) can leave it out of a
 * first answer.
 */
export async function assertTopicsExist(
  kafka: Kafka,
  topics: readonly string[],
  { attempts = 5, intervalMs = 1_000 }: { attempts?: number; intervalMs?: number } = {},
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    let missing: string[] = [...topics];
    for (let attempt = 1; ; attempt++) {
      const present = new Set(await admin.listTopics());
      missing = missing.filter((t) => !present.has(t));
      if (missing.length === 0) return;
      if (attempt >= attempts) break;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    throw new Error(
      `missing Kafka topics ${missing.join(', ')}: create them with \`cashflow-refresh topics create\``,
    );
  } finally {
    await admin.disconnect();
  }
}

/** A partition whose leader is not known yet: retriable, the broker is still setting it up. */
function notHostedYet(error: unknown): boolean {
  const e = error as { type?: string; retriable?: boolean; cause?: unknown } | undefined;
  if (e?.type === 'UNKNOWN_TOPIC_OR_PARTITION' || e?.type === 'LEADER_NOT_AVAILABLE') return true;
  return /does not host this topic-partition|no leader/i.test(String((error as Error)?.message));
}
