import { readEndOffsets } from '@cashflow/kafka';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { randomUUID } from 'node:crypto';

export interface Consumed {
  readonly topic: string;
  readonly partition: number;
  readonly message: KafkaMessage;
}

/**
 * Reads `topics` with a throwaway consumer group until `onRecord` returns false or Ctrl-C, or,
 * with `toEnd`, until every partition's end has been reached: its end as it was when reading
 * began, or the offset `targets` gives for it (`topic:partition` -> offset to stop before).
 */
export async function read(
  kafka: Kafka,
  topics: string[],
  options: { fromBeginning: boolean; toEnd: boolean; targets?: ReadonlyMap<string, bigint> },
  onRecord: (record: Consumed) => boolean | void,
): Promise<void> {
  const remaining = new Map<string, bigint>();
  for (const [key, p] of await readEndOffsets(kafka, topics)) {
    const end = options.targets?.get(key) ?? p.high;
    if (end > p.low) remaining.set(key, end);
  }
  if (options.toEnd && remaining.size === 0) return;
  const groupId = `cashflow-cli-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
  await consumer.connect();
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const stopSignal = () => finish();
  process.once('SIGINT', stopSignal);
  const reached = (topic: string, partition: number, offset: string) => {
    const key = `${topic}:${partition}`;
    const end = remaining.get(key);
    if (end !== undefined && BigInt(offset) + 1n >= end) remaining.delete(key);
    if (options.toEnd && remaining.size === 0) finish();
  };
  // A batch's last offset counts transaction markers and aborted records, which no message
  // shows: a partition ending in them is read to its end too.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) =>
    reached(payload.topic, payload.partition, payload.lastOffset),
  );
  try {
    await consumer.subscribe({ topics, fromBeginning: options.fromBeginning });
    await consumer.run({
      eachMessage: ({ topic, partition, message }) => {
        if (onRecord({ topic, partition, message }) === false) finish();
        reached(topic, partition, message.offset);
        return Promise.resolve();
      },
    });
    await finished;
  } finally {
    process.removeListener('SIGINT', stopSignal);
    await consumer.disconnect();
    const cleanup = kafka.admin();
    await cleanup.connect();
    await cleanup.deleteGroups([groupId]).catch(() => undefined);
    await cleanup.disconnect();
  }
}
