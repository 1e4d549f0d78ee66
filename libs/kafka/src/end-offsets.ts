import { KafkaJSProtocolError, type Admin, type Kafka } from 'kafkajs';
import { setTimeout as sleep } from 'node:timers/promises';

/** One partition's log: its first offset still held, and its high-water mark. */
export interface PartitionEnd {
  readonly topic: string;
  readonly partition: number;
  /** The earliest offset still in the log. */
  readonly low: bigint;
  /** The high-water mark: the offset the next record will get, so one past the last readable. */
  readonly high: bigint;
}

/** The key `fetchEndOffsets` files a partition under: `<topic>:<partition>`. */
export function partitionKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

/**
 * Where every partition of `topics` ends now, keyed by `partitionKey`. A reader that has seen
 * offset `high - 1` of every partition (or the partition is empty, `high == low`) has read
 * everything written before this call: the way to wait for "all of it" without a fixed sleep.
 */
export async function fetchEndOffsets(
  admin: Pick<Admin, 'fetchTopicOffsets'>,
  topics: readonly string[],
): Promise<Map<string, PartitionEnd>> {
  const ends = new Map<string, PartitionEnd>();
  for (const topic of topics) {
    for (const p of await admin.fetchTopicOffsets(topic)) {
      ends.set(partitionKey(topic, p.partition), {
        topic,
        partition: p.partition,
        low: BigInt(p.low),
        high: BigInt(p.high),
      });
    }
  }
  return ends;
}

/**
 * `fetchEndOffsets` with an admin client of its own, for callers that do not hold one. A leader
 * that moved (a broker restarted, a partition re-elected) is asked for again with a new admin:
 * kafkajs's fetchTopicOffsets gives up at once on NOT_LEADER_FOR_PARTITION and its admin keeps
 * the stale metadata for minutes, so asking the same admin again would ask the same broker.
 */
export async function readEndOffsets(
  kafka: Kafka,
  topics: readonly string[],
  options: { readonly attempts?: number; readonly retryDelayMs?: number } = {},
): Promise<Map<string, PartitionEnd>> {
  const attempts = options.attempts ?? 8;
  for (let attempt = 1; ; attempt++) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      return await fetchEndOffsets(admin, topics);
    } catch (error) {
      if (attempt >= attempts || !isRetriable(error)) throw error;
    } finally {
      // Leaving must not hide what happened (or fail what succeeded).
      await admin.disconnect().catch(() => undefined);
    }
    await sleep((options.retryDelayMs ?? 250) * attempt);
  }
}

/**
 * A broker's answer kafkajs marks retriable (a leader that moved, one not elected yet). Not a
 * time-out or a connection kafkajs already retried: asking again would only wait as long again.
 */
function isRetriable(error: unknown): boolean {
  return error instanceof KafkaJSProtocolError && error.retriable;
}

/** The high-water mark of every partition of `topics`, keyed by `partitionKey`. */
export async function readHighWatermarks(
  kafka: Kafka,
  topics: readonly string[],
): Promise<Map<string, bigint>> {
  const ends = await readEndOffsets(kafka, topics);
  return new Map([...ends].map(([key, end]) => [key, end.high]));
}
