import { topicName, type CashflowEvent } from '@cashflow/contracts';
import { EventPublisher, ensureTopics, readHighWatermarks } from '@cashflow/kafka';
import { createLogger } from '@cashflow/observability';
import { createDataSource, runMigrations } from '@cashflow/persistence';
import { PROJECTED_TOPICS, PROJECTOR_CONSUMER } from '@cashflow/projection';
import type { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { DataSource } from 'typeorm';
import { loadProjectorConfig } from '../../apps/projector/src/config';
import { startProjector } from '../../apps/projector/src/start-projector';
import { KAFKA_BROKERS, createTestDatabase, uniqueTopicPrefix, type TestDatabase } from './infra';
import { testKafka } from './kafka';
import { freePort } from './ports';
import { waitFor } from './wait-for';

export type Row = Record<string, unknown>;

/**
 * The projector's world, real: topics with a unique prefix, a migrated database of its own, a
 * publisher for events and a SQL client. `startProjector` runs the projector in this process.
 */
export async function projectorWorld(options: { partitions?: number } = {}) {
  const prefix = uniqueTopicPrefix();
  const kafka = testKafka(prefix);
  await ensureTopics(kafka, { prefix, partitions: options.partitions ?? 3, replicationFactor: 1 });
  const db: TestDatabase = await createTestDatabase();
  await runMigrations({ url: db.url, applicationName: 'test' });
  const publisher = new EventPublisher(kafka, prefix);
  await publisher.connect();
  const sql = new Client({ connectionString: db.url });
  await sql.connect();
  const token = randomBytes(24).toString('hex');
  const running: { close(): Promise<void> }[] = [];
  const dataSources: DataSource[] = [];

  const world = {
    prefix,
    kafka,
    db,
    token,
    publisher,
    async publish(...events: CashflowEvent[]): Promise<void> {
      await publisher.publish(...events);
    },
    async rows(query: string, params: unknown[] = []): Promise<Row[]> {
      return (await sql.query(query, params)).rows as Row[];
    },
    /** Polls a query until `ready` accepts its rows. */
    async until(
      what: string,
      query: string,
      params: unknown[],
      ready: (rows: Row[]) => boolean,
      timeoutMs = 30_000,
    ): Promise<Row[]> {
      return waitFor(
        what,
        async () => {
          const rows = await world.rows(query, params);
          return ready(rows) ? rows : undefined;
        },
        timeoutMs,
      );
    },
    /** Waits until the Item's projected status is `status`. */
    untilStatus(itemId: string, status: string, timeoutMs?: number): Promise<Row[]> {
      return world.until(
        `${itemId} ${status}`,
        'SELECT status FROM item_refresh_state WHERE item_id = $1',
        [itemId],
        (rows) => rows[0]?.status === status,
        timeoutMs,
      );
    },
    /** Waits until the projector has applied every event published so far, on every topic. */
    async untilCaughtUp(timeoutMs?: number): Promise<void> {
      const ends = await readHighWatermarks(
        kafka,
        PROJECTED_TOPICS.map((key) => topicName(key, prefix)),
      );
      await waitFor(
        'the projector to reach the end of the log',
        async () => {
          const rows = await world.rows(
            `SELECT topic || ':' || partition AS key, next_offset::text AS next
               FROM consumer_checkpoints WHERE consumer = $1`,
            [PROJECTOR_CONSUMER],
          );
          const done = new Map(rows.map((r) => [r.key as string, BigInt(r.next as string)]));
          const behind = [...ends].some(([key, end]) => (done.get(key) ?? 0n) < end);
          return behind ? undefined : true;
        },
        timeoutMs,
      );
    },
    async item(itemId: string): Promise<Row | undefined> {
      return (await world.rows('SELECT * FROM item_refresh_state WHERE item_id = $1', [itemId]))[0];
    },
    /** A TypeORM data source on the world's database (closed with the world). */
    async dataSource(): Promise<DataSource> {
      const ds = await createDataSource({ url: db.url, applicationName: 'test' }).initialize();
      dataSources.push(ds);
      return ds;
    },
    env(overrides: Record<string, string> = {}): Record<string, string> {
      return {
        KAFKA_BROKERS: KAFKA_BROKERS.join(','),
        KAFKA_TOPIC_PREFIX: prefix,
        DATABASE_URL: db.url,
        PROJECTOR_API_TOKENS: `tests:${token}`,
        LOG_LEVEL: 'info',
        ...overrides,
      };
    },
    /** The projector in this process, on a loopback port, with its log lines captured. */
    async startProjector(overrides: Record<string, string> = {}) {
      const port = await freePort();
      const config = loadProjectorConfig(world.env({ PROJECTOR_PORT: String(port), ...overrides }));
      const logLines: string[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          logLines.push(...chunk.toString().split('\n').filter(Boolean));
          done();
        },
      });
      const logger = createLogger({ service: 'projector', level: 'info', destination: sink });
      const app: INestApplication = await startProjector(config, logger);
      let closed = false;
      const projector = {
        url: `http://127.0.0.1:${port}`,
        logLines,
        app,
        async close() {
          if (closed) return;
          closed = true;
          await app.close();
        },
        async get(path: string, bearer: string | null = token) {
          const response = await fetch(`http://127.0.0.1:${port}${path}`, {
            headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
          });
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          return { status: response.status, body: (await response.json()) as any };
        },
      };
      running.push(projector);
      return projector;
    },
    async close(): Promise<void> {
      await Promise.allSettled(running.map((p) => p.close()));
      await Promise.allSettled(dataSources.map((ds) => ds.destroy()));
      await publisher.disconnect();
      await sql.end();
      await db.drop();
    },
  };
  return world;
}

export type ProjectorWorld = Awaited<ReturnType<typeof projectorWorld>>;
