import { TOPIC_KEYS, topicName } from '@cashflow/contracts';
import type { Admin } from 'kafkajs';

/** One partition of a topic a consumer group reads. */
export interface PartitionLag {
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
  /** The group's committed offset (the next record it reads), or null before its first commit. */
  readonly committed: string | null;
  /** The partition's end offset (high-water mark). */
  readonly end: string;
  /** Records at or after the committed offset (every record kept, before a first commit). */
  readonly lag: number;
}

/**
 * Lag of the service's consumer groups (`<prefix>cashflow-<app>`), from Kafka alone: for every
 * partition of each topic a group commits in, the end offset less the committed one (less the
 * earliest kept, where the group has not committed yet). An app commits below what it still has
 * in hand (the worker below its oldest unanswered request), so lag counts records read and not
 * yet done as well as records not yet read.
 */
export async function consumerLag(admin: Admin, topicPrefix: string): Promise<PartitionLag[]> {
  const { groups } = await admin.listGroups();
  const ours = groups
    .map((g) => g.groupId)
    .filter((id) => id.startsWith(`${topicPrefix}cashflow-`))
    .sort();
  const existing = new Set(await admin.listTopics());
  const topics = TOPIC_KEYS.map((key) => topicName(key, topicPrefix))
    .filter((t) => existing.has(t))
    .sort();
  const ends = new Map<string, Map<number, { high: bigint; low: bigint }>>();
  for (const topic of topics) {
    const offsets = await admin.fetchTopicOffsets(topic);
    ends.set(
      topic,
      new Map(offsets.map((o) => [o.partition, { high: BigInt(o.high), low: BigInt(o.low) }])),
    );
  }
  const rows: PartitionLag[] = [];
  for (const group of ours) {
    const committed = await admin.fetchOffsets({ groupId: group, topics });
    for (const { topic, partitions } of committed) {
      // A topic the group never committed in is not one it reads.
      if (partitions.every((p) => p.offset === '-1')) continue;
      for (const p of [...partitions].sort((a, b) => a.partition - b.partition)) {
        const bounds = ends.get(topic)?.get(p.partition);
        if (!bounds) continue;
        const at = p.offset === '-1' ? null : BigInt(p.offset);
        rows.push({
          group,
          topic,
          partition: p.partition,
          committed: at === null ? null : at.toString(),
          end: bounds.high.toString(),
          lag: Number(bounds.high - (at ?? bounds.low)),
        });
      }
    }
  }
  return rows;
}
