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
import { ProjectionStore, quoteIdent } from '../store/projection-store';

/** The projection's tables, in the order they are copied. */
export const PROJECTION_TABLES = [
  'item_refresh_state',
  'refresh_requests',
  'item_reports',
  'projection_events',
];

/** Generated columns are recomputed on insert, so they are left out of copies. */
const GENERATED = new Set(['seconds_to_accept', 'seconds_to_ready']);

export const REBUILD_SCHEMA = 'projection_rebuild';
export const REBUILD_CONSUMER = 'projector-rebuild';

/** Creates empty copies of the projection tables (columns, defaults, indexes) in `schema`. */
export async function createProjectionSchema(db: DataSource, schema: string): Promise<void> {
  const s = quoteIdent(schema);
  await db.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await db.query(`CREATE SCHEMA ${s}`);
  for (const table of PROJECTION_TABLES) {
    await db.query(`CREATE TABLE ${s}.${table} (LIKE public.${table} INCLUDING ALL)`);
  }
}

async function columnsOf(db: DataSource, table: string): Promise<string[]> {
  const rows = await queryRows<{ column_name: string }>(
    db,
    `SELECT column_name FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((r) => r.column_name).filter((c) => !GENERATED.has(c));
}

export interface RebuildOptions {
  readonly db: DataSource;
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  readonly logger: Logger;
  /** Called with progress now and then. */
  readonly onProgress?: (applied: bigint, total: bigint) => void;
}

export interface RebuildReport {
  readonly events: bigint;
  readonly items: number;
  readonly requests: number;
  readonly seconds: number;
}

/**
 * Rebuilds the projection from the event log: replays every topic from the beginning, up to
 * the end of each partition as it was when the rebuild started, into fresh tables in their own
 * schema; then, in one transaction, replaces the live tables' contents with them and moves the
 * live projector's checkpoints to where the rebuild stopped. A projector running meanwhile finds
 * its checkpoint behind on its next batch, seeks back, and applies what came after: nothing is
 * lost or applied twice. Readers see the old tables until the swap commits.
 */
export async function rebuildProjection(options: RebuildOptions): Promise<RebuildReport> {
  const { db, kafka, topicPrefix, logger } = options;
  const started = Date.now();
  await createProjectionSchema(db, REBUILD_SCHEMA);
  await db.query('DELETE FROM consumer_checkpoints WHERE consumer = $1', [REBUILD_CONSUMER]);

  const topics = PROJECTED_TOPICS.map((key) => topicName(key, topicPrefix));
  const targets = new Map<string, bigint>();
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) {
        targets.set(`${topic}:${p.partition}`, BigInt(p.high));
      }
    }
  } finally {
    await admin.disconnect();
  }
  const total = [...targets.values()].reduce((a, b) => a + b, 0n);

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
  try {
    for (;;) {
      const done = await store.checkpoints();
      let applied = 0n;
      let behind = false;
      for (const [key, high] of targets) {
        const next = BigInt(done.get(key) ?? '0');
        applied += next < high ? next : high;
        if (next < high) behind = true;
      }
      options.onProgress?.(applied, total);
      if (!behind) break;
      await sleep(250);
    }
  } finally {
    await consumer.stop();
    const groupAdmin = kafka.admin();
    await groupAdmin.connect();
    await groupAdmin.deleteGroups([groupId]).catch(() => undefined);
    await groupAdmin.disconnect();
  }

  await db.transaction(async (m) => {
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
    await m.query('DELETE FROM consumer_checkpoints WHERE consumer = $1', [PROJECTOR_CONSUMER]);
    await m.query(
      `INSERT INTO consumer_checkpoints (consumer, topic, partition, next_offset)
       SELECT $2, topic, partition, next_offset FROM consumer_checkpoints WHERE consumer = $1`,
      [REBUILD_CONSUMER, PROJECTOR_CONSUMER],
    );
    await m.query('DELETE FROM consumer_checkpoints WHERE consumer = $1', [REBUILD_CONSUMER]);
    await m.query(`DROP SCHEMA ${REBUILD_SCHEMA} CASCADE`);
  });
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
