import { queryRows } from '@cashflow/persistence';
import type { DataSource, EntityManager } from 'typeorm';

/** A consumer's stored next offsets, keyed `topic:partition`. */
export async function consumerCheckpoints(
  db: DataSource | EntityManager,
  consumer: string,
): Promise<Map<string, bigint>> {
  const rows = await queryRows<{ topic: string; partition: number; next_offset: string }>(
    db,
    'SELECT topic, partition, next_offset FROM consumer_checkpoints WHERE consumer = $1',
    [consumer],
  );
  return new Map(rows.map((r) => [`${r.topic}:${r.partition}`, BigInt(r.next_offset)]));
}
