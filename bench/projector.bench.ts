/**
 * Projector benchmark: prints a table and writes bench/results/<date>-projector.json.
 *
 *   npm run bench:projector              # 200,000 events for 20,000 Items; 30 s at 2,000/s
 *   npm run bench:projector -- --quick   # 50,000 events for 5,000 Items; 10 s at 2,000/s
 *   BENCH_PROJECTOR_NODE_FLAGS=--cpu-prof npm run bench:projector   # node flags for the projector
 *     (default: PROJECTOR_NODE_FLAGS, those docker-compose.yml and scripts/run-local.sh use)
 *
 * 1. Catch-up: the topics are filled first, then the projector (dist/apps/projector, its own
 *    process) starts from zero; events applied per second until every partition's checkpoint
 *    reaches the end of the log.
 * 2. Ceiling, in the same run: the same final rows (computed in memory with the projection's
 *    own rules) written with plain `pg` multi-row upserts, 1,000 rows per statement, into empty
 *    copies of the tables. Events per second of that is what PostgreSQL allows here.
 * 3. Lag: events produced at 2,000/s for a while with the projector caught up; lag per event is
 *    projected_at - the record's Kafka timestamp (both in projection_events).
 */
import { DEFAULT_PARTITIONS, type CashflowEvent } from '@cashflow/contracts';
import { EventPublisher, createKafka, ensureTopics } from '@cashflow/kafka';
import { createLogger } from '@cashflow/observability';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { foldEvents, itemToRow, requestToRow, type PositionedEvent } from '@cashflow/projection';
import {
  benchPrefix,
  ensureInfra,
  freePort,
  machine,
  percentile,
  processSampler,
  run,
  stopAll,
  stopInfra,
  table,
  waitForHttp,
  writeResults,
  runBench,
  benchDatabase,
  dropBenchDatabase,
} from './support';
import { eventsFor } from '../test/support/refresh-histories';

const quick = process.argv.includes('--quick');
const ITEMS = quick ? 5_000 : 20_000;
const LAG_RATE = 2_000;
const LAG_SECONDS = quick ? 10 : 30;
const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:19092';
const logger = createLogger({ service: 'bench', level: 'error' });
/** The projector's node flags: docker-compose.yml's and scripts/run-local.sh's unless given. */
const PROJECTOR_NODE_FLAGS = (
  process.env.BENCH_PROJECTOR_NODE_FLAGS ?? '--max-semi-space-size=16 --heap-growing-percent=50'
)
  .split(/\s+/)
  .filter(Boolean);

/** Ten events per Item: two refreshes ready (one report twice), one failed, one waiting. */
function itemHistory(itemId: string, base: number): CashflowEvent[] {
  const e = eventsFor(itemId);
  const t = (s: number) => new Date(base + s * 1000).toISOString();
  return [
    e.requested(`${itemId}-r1`, 90, t(0)),
    e.accepted(`${itemId}-r1`, t(1)),
    e.ready(`${itemId}-x1`, t(30)),
    e.requested(`${itemId}-r2`, undefined, t(60)),
    e.accepted(`${itemId}-r2`, t(61)),
    e.ready(`${itemId}-x2`, t(90)),
    e.ready(`${itemId}-x2b`, t(120)),
    e.requested(`${itemId}-r3`, undefined, t(150)),
    e.failed(`${itemId}-r3`, t(151)),
    e.requested(`${itemId}-r4`, undefined, t(180)),
  ];
}

async function publishAll(publisher: EventPublisher, events: CashflowEvent[]) {
  for (let i = 0; i < events.length; i += 5_000) {
    await publisher.publish(...events.slice(i, i + 5_000));
  }
}

/** Plain multi-row INSERT ... ON CONFLICT DO UPDATE, `per` rows per statement. */
async function plainUpsert(
  pg: Client,
  table: string,
  key: string,
  rows: Record<string, unknown>[],
  per = 1_000,
): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  const update = columns.filter((c) => c !== key).map((c) => `${c} = EXCLUDED.${c}`);
  for (let i = 0; i < rows.length; i += per) {
    const chunk = rows.slice(i, i + per);
    const params: unknown[] = [];
    const values = chunk.map(
      (row) =>
        `(${columns
          .map((c) => {
            const v = row[c];
            params.push(v !== null && typeof v === 'object' ? JSON.stringify(v) : v);
            return `$${params.length}`;
          })
          .join(', ')})`,
    );
    await pg.query(
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values.join(', ')}
       ON CONFLICT (${key}) DO UPDATE SET ${update.join(', ')}`,
      params,
    );
  }
}

async function ceiling(url: string, events: CashflowEvent[], prefix: string) {
  // The final rows, by the projection's own rules.
  const positioned: PositionedEvent[] = [];
  const topicOf = (type: string) =>
    type === 'RefreshRequested' ? 'requested' : type.startsWith('Refresh') ? 'outcomes' : 'reports';
  const offsets = new Map<string, number>();
  const copies: Record<string, unknown>[] = [];
  for (const event of events) {
    const topic = `${prefix}${topicOf(event.type)}`;
    const offset = offsets.get(topic) ?? 0;
    offsets.set(topic, offset + 1);
    const position = { topic, partition: 0, offset: String(offset) };
    const id = event.data.item_id;
    positioned.push({ event, position });
    copies.push({
      topic,
      partition: 0,
      kafka_offset: offset,
      event_id: event.metadata.id,
      event_type: event.type,
      item_id: id,
      event_time: event.metadata.time,
      kafka_timestamp: new Date().toISOString(),
      metadata: event.metadata,
      data: event.data,
    });
  }
  const items = foldEvents(positioned);
  const itemRows = [...items.values()].map((p) => itemToRow(p.item));
  const requestRows = [...items.values()].flatMap((p) =>
    [...p.requests.values()].map(requestToRow),
  );

  const pg = new Client({ connectionString: url });
  await pg.connect();
  try {
    await pg.query('CREATE SCHEMA ceiling');
    for (const t of ['item_refresh_state', 'refresh_requests', 'projection_events']) {
      await pg.query(`CREATE TABLE ceiling.${t} (LIKE public.${t} INCLUDING ALL)`);
    }
    const started = process.hrtime.bigint();
    await pg.query('BEGIN');
    await plainUpsert(pg, 'ceiling.projection_events', 'topic, partition, kafka_offset', copies);
    await plainUpsert(pg, 'ceiling.refresh_requests', 'item_id, request_id', requestRows);
    await plainUpsert(pg, 'ceiling.item_refresh_state', 'item_id', itemRows);
    await pg.query('COMMIT');
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return {
      seconds: Math.round(seconds * 100) / 100,
      events_per_s: Math.round(events.length / seconds),
      rows: { items: itemRows.length, requests: requestRows.length, events: copies.length },
    };
  } finally {
    await pg.end();
  }
}

async function main() {
  const infra = ensureInfra();
  const prefix = benchPrefix(BROKERS);
  const kafka = createKafka({ brokers: [BROKERS], clientId: 'bench', topicPrefix: prefix, logger });
  await ensureTopics(kafka, { prefix, partitions: DEFAULT_PARTITIONS, replicationFactor: 1 });
  const url = await benchDatabase();
  const publisher = new EventPublisher(kafka, prefix);
  await publisher.connect();
  const pg = new Client({ connectionString: url });
  await pg.connect();
  try {
    const base = Date.parse('2026-11-24T00:00:00Z');
    const events: CashflowEvent[] = [];
    for (let i = 0; i < ITEMS; i++) events.push(...itemHistory(`item-${i}-${randomUUID()}`, base));
    process.stdout.write(`producing ${events.length} events for ${ITEMS} Items...\n`);
    await publishAll(publisher, events);

    const port = await freePort();
    const proc = run(
      'apps/projector/src/main.js',
      {
        KAFKA_BROKERS: BROKERS,
        KAFKA_TOPIC_PREFIX: prefix,
        DATABASE_URL: url,
        PROJECTOR_PORT: String(port),
        PROJECTOR_API_TOKENS: `bench:${randomBytes(24).toString('hex')}`,
        LOG_LEVEL: 'warn',
      },
      PROJECTOR_NODE_FLAGS,
    );
    const sampler = processSampler(proc.child.pid!);
    await waitForHttp(`http://127.0.0.1:${port}/health/ready`, proc);
    const applied = async () =>
      Number(
        (
          await pg.query<{ n: string }>(
            `SELECT coalesce(sum(next_offset), 0)::text AS n FROM consumer_checkpoints WHERE consumer = 'projector'`,
          )
        ).rows[0]!.n,
      );
    let firstAt: bigint | undefined;
    for (;;) {
      const n = await applied();
      if (n > 0 && firstAt === undefined) firstAt = process.hrtime.bigint();
      if (n >= events.length) break;
      await sleep(50);
    }
    const catchUpSeconds = Number(process.hrtime.bigint() - firstAt!) / 1e9;
    const catchUp = {
      events: events.length,
      items: ITEMS,
      seconds: Math.round(catchUpSeconds * 100) / 100,
      events_per_s: Math.round(events.length / catchUpSeconds),
      peak_rss_mb: 0,
      cpu_s: 0,
      /** Over the catch-up and the lag run: the sampler covers both. */
      cpu_s_per_1000_events: 0,
    };

    // Lag while producing at a steady rate.
    const lagEvents: CashflowEvent[] = [];
    const lagItems = (LAG_RATE * LAG_SECONDS) / 10;
    for (let i = 0; i < lagItems; i++) {
      lagEvents.push(...itemHistory(`lag-${i}-${randomUUID()}`, Date.now()));
    }
    const tick = 100;
    const perTick = (LAG_RATE * tick) / 1000;
    const started = Date.now();
    for (let i = 0; i < lagEvents.length; i += perTick) {
      const due = started + (i / perTick) * tick;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      await publisher.publish(...lagEvents.slice(i, i + perTick));
    }
    const producedFor = (Date.now() - started) / 1000;
    const total = events.length + lagEvents.length;
    while ((await applied()) < total) await sleep(50);
    sampler.stop();
    catchUp.peak_rss_mb = sampler.peakMb;
    catchUp.cpu_s = sampler.cpuSeconds;
    catchUp.cpu_s_per_1000_events =
      Math.round((sampler.cpuSeconds / (events.length + lagEvents.length)) * 1000 * 1000) / 1000;
    const lags = (
      await pg.query<{ ms: number }>(
        `SELECT extract(epoch FROM projected_at - kafka_timestamp) * 1000 AS ms
           FROM projection_events WHERE item_id LIKE 'lag-%'`,
      )
    ).rows
      .map((r) => Number(r.ms))
      .sort((a, b) => a - b);
    const lag = {
      rate: Math.round(lagEvents.length / producedFor),
      events: lags.length,
      p50_ms: Math.round(percentile(lags, 0.5)),
      p99_ms: Math.round(percentile(lags, 0.99)),
      max_ms: Math.round(lags[lags.length - 1] ?? 0),
    };
    await proc.stop();

    const plain = await ceiling(url, events, prefix);
    const share = Math.round((catchUp.events_per_s / plain.events_per_s) * 1000) / 10;
    const result = {
      date: new Date().toISOString(),
      quick,
      machine: machine(),
      partitions: DEFAULT_PARTITIONS,
      node_flags: PROJECTOR_NODE_FLAGS.join(' '),
      catch_up: catchUp,
      ceiling: plain,
      share_of_ceiling_pct: share,
      lag,
    };
    process.stdout.write(
      `\n${table([
        ['run', 'events', 'seconds', 'events/s', 'RSS MB', 'CPU s'],
        [
          'projector from zero',
          catchUp.events,
          catchUp.seconds,
          catchUp.events_per_s,
          catchUp.peak_rss_mb,
          catchUp.cpu_s,
        ],
        ['plain pg upserts (ceiling)', catchUp.events, plain.seconds, plain.events_per_s, '', ''],
      ])}\n\n${table([
        ['measure', 'value', 'target'],
        ['projector events/s', catchUp.events_per_s, '>= 20000'],
        ['share of the plain pg ceiling (%)', share, '>= 90'],
        ['peak RSS, catch-up and lag run (MB)', catchUp.peak_rss_mb, '< 300'],
        [
          `lag p50 / p99 at ${lag.rate} events/s (ms)`,
          `${lag.p50_ms} / ${lag.p99_ms}`,
          'p99 < 100',
        ],
      ])}\n\n`,
    );
    writeResults('projector', quick, result);
  } finally {
    await publisher.disconnect();
    await pg.end();
    await stopAll();
    await dropBenchDatabase(url).catch(() => undefined);
    stopInfra(infra);
  }
}

runBench(main);
