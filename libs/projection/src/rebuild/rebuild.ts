import { topicName } from '@cashflow/contracts';
import type { Logger } from '@cashflow/observability';
import { queryRows } from '@cashflow/persistence';
import type { Kafka } from 'kafkajs';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { ProjectorConsumer } from '../consumer/projector-consumer';
import { ProjectorMetrics } from '../consumer/projector-metrics';
import { PROJECTED_TOPICS, PROJECTOR_CONSUMER } from '../projected-topics';
import { consumerCheckpoints } from '../store/checkpoints';
import { ProjectionStore, quoteIdent } from '../store/projection-store';
import { readHighWatermarks } from '@cashflow/kafka';

/** The projection's tables, in the order they are copied. */
export const PROJECTION_TABLES = [
  'item_refresh_state',
  'refresh_requests',
  'item_reports',
  'projection_events',
];

/**
 * Where a projection's transactions lock the Items they change: not projection data, so a
 * rebuild locks in its own schema's copy and the swap leaves the live one as it is.
 */
const ITEM_LOCKS = 'projection_item_locks';

export const REBUILD_SCHEMA = 'projection_rebuild';
export const REBUILD_CONSUMER = 'projector-rebuild';

/**
 * Creates empty copies of the projection tables (columns, defaults, indexes) in `schema`, and of
 * the table its transactions lock Items in.
 */
export async function createProjectionSchema(db: DataSource, schema: string): Promise<void> {
  const s = quoteIdent(schema);
  await db.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await db.query(`CREATE SCHEMA ${s}`);
  for (const table of [...PROJECTION_TABLES, ITEM_LOCKS]) {
    await db.query(`CREATE TABLE ${s}.${table} (LIKE public.${table} INCLUDING ALL)`);
  }
}

/** A table's columns, but the generated ones: those are recomputed on insert. */
async function columnsOf(db: DataSource, table: string): Promise<string[]> {
  const rows = await queryRows<{ column_name: string }>(
    db,
    `SELECT column_name FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = $1 AND is_generated = 'NEVER'
      ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((r) => r.column_name);
}

export interface RebuildOptions {
  readonly db: DataSource;
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  readonly logger: Logger;
  /** Called with progress now and then. */
  readonly onProgress?: (applied: bigint, total: bigint) => void;
  /** Awaited once the log as it was at the start is replayed, before the live tables are taken. */
  readonly beforeSwap?: () => Promise<void>;
}

export interface RebuildReport {
  readonly events: bigint;
  readonly items: number;
  readonly requests: number;
  readonly seconds: number;
}

/** Why a rebuild stopped without swapping its tables in; the live tables are left as they were. */
export class RebuildError extends Error {
  constructor(
    readonly code: 'REBUILD_BEHIND_PROJECTOR',
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** How long the swap may hold the live projector while the rebuild reaches it. */
const SWAP_CATCH_UP_MS = 60_000;

/**
 * Rebuilds the projection from the event log: replays every topic from the beginning into fresh
 * tables in their own schema, up to the end of each partition as it was when the rebuild
 * started, then up to wherever the live projector has got meanwhile; then, in one transaction,
 * replaces the live tables' contents with them and sets the live projector's checkpoints to
 * where the rebuild stopped. The swap locks the projector's checkpoints first, as each of its
 * batches does before writing the tables (the same lock order: no deadlock), which waits for
 * batches in flight and holds new ones; it lets the replay reach those checkpoints before
 * swapping, so the new checkpoints are never behind what the projector has applied: it carries
 * on from them on every partition, a quiet one too, with nothing lost or applied twice.
 * Readers see the old tables until the swap commits.
 */
export async function rebuildProjection(options: RebuildOptions): Promise<RebuildReport> {
  const { db, kafka, topicPrefix, logger } = options;
  const started = Date.now();
  await createProjectionSchema(db, REBUILD_SCHEMA);
  await db.query('DELETE FROM consumer_checkpoints WHERE consumer = $1', [REBUILD_CONSUMER]);
  const targets = await readHighWatermarks(
    kafka,
    PROJECTED_TOPICS.map((key) => topicName(key, topicPrefix)),
  );
  const total = [...targets.values()].reduce((a, b) => a + b, 0n);

  const replay = await startReplay(options);
  try {
    await replay.reach(targets, { onProgress: (applied) => options.onProgress?.(applied, total) });
    await options.beforeSwap?.();
    // Most of the way to the live projector first, without holding it up.
    await replay.reach(await consumerCheckpoints(db, PROJECTOR_CONSUMER));
    await swapIn(db, replay, [...targets.keys()]);
  } finally {
    await replay.stop();
  }

  const [counts] = await queryRows<{ items: number; requests: number }>(
    db,
    `SELECT (SELECT count(*)::int FROM item_refresh_state) AS items,
            (SELECT count(*)::int FROM refresh_requests) AS requests`,
  );
  const report = {
    events: total,
    items: counts?.items ?? 0,
    requests: counts?.requests ?? 0,
    seconds: (Date.now() - started) / 1000,
  };
  logger.info({ ...report, events: String(total) }, 'projection rebuilt');
  return report;
}

type Replay = Awaited<ReturnType<typeof startReplay>>;

/** A projector of its own, reading every topic from the beginning into the rebuild's schema. */
async function startReplay(options: RebuildOptions) {
  const { db, kafka, topicPrefix, logger } = options;
  const store = new ProjectionStore(db, { schema: REBUILD_SCHEMA, consumer: REBUILD_CONSUMER });
  const groupId = `${topicPrefix}cashflow-projector-rebuild-${randomUUID()}`;
  const consumer = new ProjectorConsumer(
    kafka,
    store,
    { deadLetter: () => Promise.resolve() },
    new ProjectorMetrics(new Registry()),
    { groupId, topicPrefix, consumerName: REBUILD_CONSUMER, deadLetter: false, logger },
  );
  await consumer.start();
  let stopped: Promise<void> | undefined;
  return {
    /**
     * Waits until the replay's next offset reaches `targets` (`topic:partition` -> next offset)
     * on every partition, or fails after `deadlineMs`.
     */
    async reach(
      targets: ReadonlyMap<string, bigint>,
      wait: { onProgress?: (applied: bigint) => void; deadlineMs?: number; pollMs?: number } = {},
    ): Promise<void> {
      const deadline = Date.now() + (wait.deadlineMs ?? Infinity);
      for (;;) {
        const done = await store.checkpoints();
        let applied = 0n;
        const behind: string[] = [];
        for (const [key, target] of targets) {
          const next = done.get(key) ?? 0n;
          applied += next < target ? next : target;
          if (next < target) behind.push(`${key} at ${next} of ${target}`);
        }
        wait.onProgress?.(applied);
        if (behind.length === 0) return;
        if (Date.now() >= deadline) {
          throw new RebuildError(
            'REBUILD_BEHIND_PROJECTOR',
            `the rebuild did not reach the live projector's checkpoints within ${wait.deadlineMs} ms (${behind.slice(0, 3).join(', ')}); run it again, and if it stops here again, check that the topics were not recreated under the projector (its checkpoints beyond their end)`,
          );
        }
        await sleep(wait.pollMs ?? 250);
      }
    },
    /** Stops reading and forgets the consumer group; the replay's checkpoints are then final. */
    stop(): Promise<void> {
      stopped ??= (async () => {
        await consumer.stop();
        const admin = kafka.admin();
        await admin.connect();
        await admin.deleteGroups([groupId]).catch(() => undefined);
        await admin.disconnect();
      })();
      return stopped;
    },
  };
}

/**
 * Replaces the live tables' contents and checkpoints with the rebuild's, in one transaction
 * that locks the projector's checkpoints before the tables, as a projector batch does.
 */
async function swapIn(db: DataSource, replay: Replay, partitions: readonly string[]) {
  // Every partition gets a checkpoint row first, so that no projector batch creates one (and
  // runs ahead of the swap) while the swap holds the others.
  await db.query(
    `INSERT INTO consumer_checkpoints (consumer, topic, partition, next_offset)
     SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int[]) AS k(t, p) ON CONFLICT DO NOTHING`,
    [
      PROJECTOR_CONSUMER,
      partitions.map((k) => k.slice(0, k.lastIndexOf(':'))),
      partitions.map((k) => Number(k.slice(k.lastIndexOf(':') + 1))),
    ],
  );
  await db.transaction(async (m) => {
    await m.query(
      `SELECT 1 FROM consumer_checkpoints WHERE consumer = $1
        ORDER BY topic, partition FOR UPDATE`,
      [PROJECTOR_CONSUMER],
    );
    await replay.reach(await consumerCheckpoints(m, PROJECTOR_CONSUMER), {
      deadlineMs: SWAP_CATCH_UP_MS,
      pollMs: 50,
    });
    await replay.stop();
    for (const table of PROJECTION_TABLES) {
      await m.query(`LOCK TABLE public.${table} IN ACCESS EXCLUSIVE MODE`);
    }
    for (const table of PROJECTION_TABLES) {
      const cols = (await columnsOf(db, table)).join(', ');
      await m.query(`TRUNCATE public.${table}`);
      await m.query(
        `INSERT INTO public.${table} (${cols}) SELECT ${cols} FROM ${REBUILD_SCHEMA}.${table}`,
      );
    }
    // Updated in place: a projector batch waiting for its row then reads the new offset.
    await m.query(
      `UPDATE consumer_checkpoints AS live
          SET next_offset = rebuilt.next_offset, updated_at = now()
         FROM consumer_checkpoints AS rebuilt
        WHERE live.consumer = $1 AND rebuilt.consumer = $2
          AND live.topic = rebuilt.topic AND live.partition = rebuilt.partition`,
      [PROJECTOR_CONSUMER, REBUILD_CONSUMER],
    );
    await m.query('DELETE FROM consumer_checkpoints WHERE consumer = $1', [REBUILD_CONSUMER]);
    await m.query(`DROP SCHEMA ${REBUILD_SCHEMA} CASCADE`);
  });
}
