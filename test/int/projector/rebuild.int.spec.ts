import { encodeEvent, topicName } from '@cashflow/contracts';
import { PROJECTOR_CONSUMER, rebuildProjection, type RebuildReport } from '@cashflow/projection';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { quietLogger } from '../../support/kafka';
import { projectorWorld, type ProjectorWorld } from '../../support/projector';
import { eventsFor } from '../../support/refresh-histories';
import { waitFor } from '../../support/wait-for';

/** `projection rebuild` against a live projector, on a world (topics, database) of its own. */
describe('projection rebuild', () => {
  let world: ProjectorWorld;
  let db: DataSource;

  beforeEach(async () => {
    world = await projectorWorld();
    db = await world.dataSource();
  });
  afterEach(async () => {
    await world.close();
  });

  const rebuild = (beforeSwap?: () => Promise<void>) =>
    rebuildProjection({
      db,
      kafka: world.kafka,
      topicPrefix: world.prefix,
      logger: quietLogger,
      ...(beforeSwap ? { beforeSwap } : {}),
    });
  /** Fails instead of waiting for ever when the rebuild never finishes. */
  const within = (rebuilding: Promise<RebuildReport>, ms: number) =>
    Promise.race([
      rebuilding,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`the rebuild did not finish within ${ms} ms`)), ms),
      ),
    ]);
  /** Each partition's stored next offset against its end on Kafka. */
  async function checkpointsAgainstEnds(): Promise<{ key: string; next: string; high: string }[]> {
    const rows = await world.rows(
      'SELECT topic, partition, next_offset FROM consumer_checkpoints WHERE consumer = $1',
      [PROJECTOR_CONSUMER],
    );
    const next = new Map(rows.map((r) => [`${String(r.topic)}:${String(r.partition)}`, r]));
    const admin = world.kafka.admin();
    await admin.connect();
    try {
      const ends = [];
      for (const key of ['refreshRequested', 'refreshOutcomes', 'reportOutcomes'] as const) {
        const topic = topicName(key, world.prefix);
        for (const p of await admin.fetchTopicOffsets(topic)) {
          if (p.high === '0') continue;
          const row = next.get(`${topic}:${p.partition}`);
          ends.push({
            key: `${topic}:${p.partition}`,
            next: String(row?.next_offset),
            high: p.high,
          });
        }
      }
      return ends;
    } finally {
      await admin.disconnect();
    }
  }

  it('keeps what the live projector applied after the rebuild began, on a partition that stays quiet', async () => {
    const projector = await world.startProjector();
    const before = `item-${randomUUID()}`;
    await world.publish(eventsFor(before).requested(`${before}-r1`));
    await world.untilStatus(before, 'requested');
    const during = `item-${randomUUID()}`;
    await rebuild(async () => {
      // Beyond the end the rebuild read to: the live projector applies it before the swap.
      await world.publish(eventsFor(during).requested(`${during}-r1`));
      await world.untilStatus(during, 'requested');
    });
    // Nothing more is published: the Item must not depend on its partition's next batch.
    await world.untilStatus(during, 'requested', 10_000);
    await world.untilStatus(before, 'requested', 1_000);
    for (const end of await checkpointsAgainstEnds()) expect(end.next).toBe(end.high);
    await projector.close();
  });

  it('swaps while a projector batch holds its checkpoint, without a deadlock', async () => {
    const itemId = `item-${randomUUID()}`;
    await world.publish(eventsFor(itemId).requested(`${itemId}-r1`));
    const topic = topicName('refreshRequested', world.prefix);
    await world.rows(
      `INSERT INTO consumer_checkpoints (consumer, topic, partition, next_offset)
       SELECT $1, $2, p, 0 FROM generate_series(0, 2) AS p`,
      [PROJECTOR_CONSUMER, topic],
    );
    // A projector batch, by hand: it locks its partition's checkpoint, then writes the tables.
    const batch = new Client({ connectionString: world.db.url });
    await batch.connect();
    try {
      const rebuilding = rebuild(async () => {
        await batch.query('BEGIN');
        await batch.query(
          `SELECT next_offset FROM consumer_checkpoints
            WHERE consumer = $1 AND topic = $2 AND partition = 0 FOR UPDATE`,
          [PROJECTOR_CONSUMER, topic],
        );
      });
      const outcome = rebuilding.then(
        () => 'rebuilt',
        (error: Error) => error.message,
      );
      await waitFor('the swap to wait for the batch', async () => {
        const waiting = await world.rows(
          `SELECT 1 FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        return waiting.length > 0 ? true : undefined;
      });
      const written = batch
        .query(`INSERT INTO item_refresh_state (item_id, status) VALUES ('item-batch', 'ready')`)
        .then(() => batch.query('COMMIT'))
        .then(
          () => 'committed',
          (error: Error) => error.message,
        );
      expect(await written).toBe('committed');
      expect(await outcome).toBe('rebuilt');
      await world.untilStatus(itemId, 'requested', 1_000);
    } finally {
      await batch.end();
    }
  });

  it('reaches the end of a partition whose last records are transaction markers', async () => {
    const itemId = `item-${randomUUID()}`;
    const topic = topicName('refreshRequested', world.prefix);
    const producer = world.kafka.producer({
      transactionalId: `test-${randomUUID()}`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    /** One record in a transaction: a record, then its commit or abort marker. */
    const inTransaction = async (id: string, end: 'commit' | 'abort') => {
      const transaction = await producer.transaction();
      const record = encodeEvent(eventsFor(itemId).requested(id));
      await transaction.send({ topic, messages: [{ ...record, partition: 0 }] });
      await transaction[end]();
    };
    const atTheEnd = () =>
      waitFor('every checkpoint at the end of its partition', async () => {
        const ends = await checkpointsAgainstEnds();
        return ends.length > 0 && ends.every((e) => e.next === e.high) ? ends : undefined;
      });
    try {
      // The marker comes in the same fetch as the record it follows.
      await inTransaction(`${itemId}-r1`, 'commit');
      const projector = await world.startProjector();
      await world.untilStatus(itemId, 'requested');
      await atTheEnd();
      // Later, a fetch of nothing but an aborted record and its marker.
      await inTransaction(`${itemId}-r2`, 'abort');
      await atTheEnd();
      await within(rebuild(), 30_000);
      await atTheEnd();
      expect(await world.item(itemId)).toMatchObject({ latest_request_id: `${itemId}-r1` });
      await projector.close();
    } finally {
      await producer.disconnect();
    }
  });
});
