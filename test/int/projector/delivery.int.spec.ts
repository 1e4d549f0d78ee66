import { topicName, type CashflowEvent } from '@cashflow/contracts';
import { murmur2, readEndOffsets } from '@cashflow/kafka';
import {
  PROJECTED_TOPICS,
  PROJECTION_TABLES,
  PROJECTOR_CONSUMER,
  ProjectionStore,
  createProjectionSchema,
  foldEvents,
  itemToRow,
  rebuildProjection,
  requestToRow,
  rowToItem,
  rowToRequest,
  type ItemRow,
  type PositionedEvent,
  type RequestRow,
} from '@cashflow/projection';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { DataSource, EntityManager } from 'typeorm';
import { quietLogger, uncommitted } from '../../support/kafka';
import { waitFor as waitForValue } from '../../support/wait-for';
import { projectorWorld, type ProjectorWorld, type Row } from '../../support/projector';
import {
  eventsFor,
  historyEvents,
  historyPlan,
  inTimeOrder,
  interleave,
  interleaving,
  longHistoryPlan,
  topicByTopic,
  type RefreshPlan,
} from '../../support/refresh-histories';

/** The item columns that record the last event applied, so depend on arrival order. */
const ARRIVAL_ORDER = {
  last_event_id: null,
  last_event_topic: null,
  last_event_partition: null,
  last_event_offset: null,
};

/** Rows of a projection table, without what records arrival order or wall-clock time. */
async function snapshot(world: ProjectorWorld, schema: string, table: string): Promise<Row[]> {
  const order: Record<string, string> = {
    item_refresh_state: 'item_id',
    refresh_requests: 'request_id',
    item_reports: 'item_id, received_at, event_id',
    projection_events: 'topic, partition, kafka_offset',
  };
  const rows = await world.rows(`SELECT * FROM ${schema}.${table} ORDER BY ${order[table]}`);
  return rows.map((row) => {
    const copy = { ...row };
    for (const column of [
      'updated_at',
      'projected_at',
      'last_event_id',
      'last_event_topic',
      'last_event_partition',
      'last_event_offset',
    ])
      delete copy[column];
    return copy;
  });
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

/** Every node of an EXPLAIN (FORMAT JSON) plan. */
function planNodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(planNodes)];
}

/**
 * Applies events in the order given, as a consumer reading that order would: each run of
 * consecutive records of one partition is one batch, and consecutive batches go together into
 * one transaction, `groupSizes[i]` of them in the i-th (one each when not given), as the
 * projector's group commit takes the batches of one fetch together.
 */
async function applyInOrder(
  store: ProjectionStore,
  events: readonly PositionedEvent[],
  groupSizes: readonly number[] = [],
) {
  const batches: PositionedEvent[][] = [];
  for (const e of events) {
    const batch = batches[batches.length - 1];
    const last = batch?.[batch.length - 1]?.position;
    const follows =
      last?.topic === e.position.topic &&
      last.partition === e.position.partition &&
      BigInt(last.offset) + 1n === BigInt(e.position.offset);
    if (batch && follows) batch.push(e);
    else batches.push([e]);
  }
  const asBatch = (batch: PositionedEvent[]) => {
    const { topic, partition, offset } = batch[0]!.position;
    return {
      topic,
      partition,
      firstOffset: offset,
      lastOffset: batch[batch.length - 1]!.position.offset,
      events: batch.map(({ event, position }) => ({
        event,
        position,
        kafkaTimestamp: String(Date.parse(event.metadata.time)),
      })),
    };
  };
  for (let at = 0, group = 0; at < batches.length; group++) {
    const size = Math.max(1, groupSizes[group] ?? 1);
    const { outcomes } = await store.applyAll(batches.slice(at, at + size).map(asBatch));
    expect(outcomes.every((o) => o.kind === 'applied')).toBe(true);
    at += size;
  }
}

describe('projector delivery', () => {
  let world: ProjectorWorld;
  let db: DataSource;

  beforeAll(async () => {
    world = await projectorWorld();
    db = await world.dataSource();
  });
  afterAll(async () => {
    await world.close();
  });

  const metric = async (url: string, pattern: RegExp) => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return [...text.matchAll(pattern)].reduce((sum, m) => sum + Number(m[1]), 0);
  };

  it('skips a whole batch delivered again: the stored checkpoint, not Kafka, decides', async () => {
    const first = await world.startProjector();
    const itemId = `item-${randomUUID()}`;
    const e = eventsFor(itemId);
    await world.publish(e.requested(`${itemId}-r1`));
    await world.publish(e.accepted(`${itemId}-r1`, '2026-11-24T10:00:02Z'));
    await world.publish(e.ready(`${itemId}-x1`, '2026-11-24T10:01:00Z'));
    await world.untilStatus(itemId, 'ready');
    await first.close();
    const items = await snapshot(world, 'public', 'item_refresh_state');
    const requests = await snapshot(world, 'public', 'refresh_requests');
    const copies = await snapshot(world, 'public', 'projection_events');

    // Kafka forgets how far the group got: every batch is delivered again from offset 0.
    const admin = world.kafka.admin();
    await admin.connect();
    for (const topic of new Set(copies.map((c) => c.topic as string))) {
      await admin.resetOffsets({
        groupId: `${world.prefix}cashflow-projector`,
        topic,
        earliest: true,
      });
    }
    await admin.disconnect();

    const again = await world.startProjector();
    await waitForValue('the three batches to be skipped', () =>
      metric(again.url, /projector_batches_total\{[^}]*result="skipped"[^}]*\} (\d+)/g).then((n) =>
        n >= 3 ? n : undefined,
      ),
    );
    expect(await metric(again.url, /projector_events_applied_total\{[^}]*\} (\d+)/g)).toBe(0);
    await again.close();
    expect(await snapshot(world, 'public', 'item_refresh_state')).toEqual(items);
    expect(await snapshot(world, 'public', 'refresh_requests')).toEqual(requests);
    expect(await snapshot(world, 'public', 'projection_events')).toEqual(copies);
  });

  it('applies the batches of one fetch together: fewer transactions than batches', async () => {
    // Forty Items' requests and acceptances wait on many partitions of two topics before the
    // projector starts, so its first fetches bring many partitions' batches at once.
    const itemIds = Array.from({ length: 40 }, () => `item-${randomUUID()}`);
    for (const itemId of itemIds) {
      const e = eventsFor(itemId);
      await world.publish(
        e.requested(`${itemId}-r1`),
        e.accepted(`${itemId}-r1`, '2026-11-24T10:00:02Z'),
      );
    }
    const projector = await world.startProjector();
    await waitForValue('every Item refreshing', async () => {
      const [row] = await world.rows(
        `SELECT count(*)::int AS n FROM item_refresh_state
          WHERE item_id = ANY($1) AND status = 'refreshing'`,
        [itemIds],
      );
      return row!.n === itemIds.length ? true : undefined;
    });
    const batches = await metric(
      projector.url,
      /projector_batches_total\{[^}]*result="(?:applied|skipped)"[^}]*\} (\d+)/g,
    );
    const transactions = await metric(
      projector.url,
      /projector_batch_seconds_count(?:\{[^}]*\})? (\d+)/g,
    );
    expect(batches).toBeGreaterThan(2);
    expect(transactions).toBeGreaterThan(0);
    expect(transactions).toBeLessThan(batches);

    // Kafka is told how far the projector got (every few seconds, not per batch), so Kafka's
    // tools see the group's lag.
    const ends = await readEndOffsets(
      world.kafka,
      PROJECTED_TOPICS.map((key) => topicName(key, world.prefix)),
    );
    const admin = world.kafka.admin();
    await admin.connect();
    try {
      await waitForValue('the projector group to commit the end of the log', async () =>
        (await uncommitted(admin, `${world.prefix}cashflow-projector`, ends)) === 0n
          ? true
          : undefined,
      );
    } finally {
      await admin.disconnect();
    }
    await projector.close();
  });

  /**
   * Runs `before` ahead of every statement of the transactions `db` starts (only the next one
   * with `once`), until the returned spy is restored.
   */
  const beforeEachStatement = (
    before: (sql: string, params: unknown[]) => Promise<void> | void,
    once = false,
  ) => {
    const transaction = db.transaction.bind(db) as (
      work: (m: EntityManager) => Promise<unknown>,
    ) => Promise<unknown>;
    const spy = jest.spyOn(db, 'transaction');
    const intercepted = ((work: (m: EntityManager) => Promise<unknown>) =>
      transaction((m) => {
        const query = m.query.bind(m);
        m.query = async (sql: string, params?: unknown[]) => {
          await before(sql, params ?? []);
          return query(sql, params);
        };
        return work(m);
      })) as unknown as typeof db.transaction;
    if (once) spy.mockImplementationOnce(intercepted);
    else spy.mockImplementation(intercepted);
    return spy;
  };

  it('looks up the requests a batch needs by index, however large the table: no transaction reads refresh_requests whole', async () => {
    const schema = 'lookups';
    await createProjectionSchema(db, schema);
    await world.rows('DELETE FROM consumer_checkpoints WHERE consumer = $1', [schema]);
    const store = new ProjectionStore(db, { schema, consumer: schema });
    const topic = topicName('refreshRequested', '');
    const requests = (from: number, count: number): PositionedEvent[] =>
      Array.from({ length: count }, (_, i) => ({
        event: eventsFor(`lookup-item-${(from + i) % 4_000}`).requested(`lookup-${from + i}`),
        position: { topic, partition: 0, offset: String(from + i) },
      }));
    // 12,000 requests projected, and statistics that know it: the planner's choice is then its
    // own, not forced by an empty table.
    await applyInOrder(store, requests(0, 12_000));
    await world.rows(`ANALYZE ${schema}.refresh_requests`);

    // One transaction naming 3,000 requests (a quarter of the table) over 3,000 Items; the
    // statements it sends are planned again here, with the same parameters.
    const sent: [string, unknown[]][] = [];
    const spy = beforeEachStatement((sql, params) => {
      sent.push([sql, params]);
    });
    try {
      await applyInOrder(store, requests(12_000, 3_000));
    } finally {
      spy.mockRestore();
    }
    const reads = sent.filter(
      ([sql]) => /^\s*SELECT/.test(sql) && sql.includes(`"${schema}".refresh_requests`),
    );
    expect(reads.length).toBeGreaterThan(0);
    for (const [sql, params] of reads) {
      const [row] = await world.rows(`EXPLAIN (FORMAT JSON) ${sql}`, params);
      const scans = planNodes((row!['QUERY PLAN'] as [{ Plan: PlanNode }])[0].Plan)
        .filter((node) => node['Relation Name'] === 'refresh_requests')
        .map((node) => node['Node Type']);
      expect(scans.length).toBeGreaterThan(0);
      expect(scans).not.toContain('Seq Scan');
    }
  }, 120_000);

  /**
   * Makes the next transaction of `db` stop before it reads its Items' rows (so after it has
   * locked them) until `release` is called; `held` resolves once it stopped there.
   */
  const holdNextTransaction = (schema: string) => {
    let stopped!: () => void;
    const held = new Promise<void>((resolve) => (stopped = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const spy = beforeEachStatement(async (sql) => {
      if (sql.includes(`"${schema}".item_refresh_state WHERE item_id = ANY`)) {
        stopped();
        await released;
      }
    }, true);
    return {
      held,
      release: () => {
        spy.mockRestore();
        release();
      },
    };
  };

  /** A batch of `events` at offsets `from`.. of a partition, as the consumer hands it over. */
  const batchOf = (topic: string, partition: number, events: CashflowEvent[], from = 0) => ({
    topic,
    partition,
    firstOffset: String(from),
    lastOffset: String(from + events.length - 1),
    events: events.map((event, i) => ({
      event,
      position: { topic, partition, offset: String(from + i) },
      kafkaTimestamp: String(Date.parse(event.metadata.time)),
    })),
  });

  it("applies batches of thousands of Items while another projector's transaction holds as many: PostgreSQL's shared lock table does not bound them", async () => {
    const schema = 'many_items';
    await createProjectionSchema(db, schema);
    await world.rows('DELETE FROM consumer_checkpoints WHERE consumer = $1', [schema]);
    // The server's shared lock table has room for max_locks_per_transaction locks per server
    // process (client backends, background ones, prepared transactions; a little more in
    // practice), for every session together. Two transactions of a quarter more Items than that
    // each: a replica of the projector, or a rebuild beside the live projector, catching up a
    // log of many Items.
    const [row] = await world.rows(
      `SELECT current_setting('max_locks_per_transaction')::int
              * (current_setting('max_connections')::int
                 + current_setting('autovacuum_max_workers')::int + 1
                 + current_setting('max_worker_processes')::int
                 + current_setting('max_wal_senders')::int
                 + current_setting('max_prepared_transactions')::int) AS slots`,
    );
    const perBatch = Math.ceil((row!.slots as number) * 1.25);
    const topic = topicName('refreshRequested', '');
    const requests = (partition: number) =>
      Array.from({ length: perBatch }, (_, i) =>
        eventsFor(`many-${partition}-${i}`).requested(`many-${partition}-r${i}`),
      );
    const store = new ProjectionStore(db, { schema, consumer: schema });

    const first = holdNextTransaction(schema);
    const applying = store.applyAll([batchOf(topic, 0, requests(0))]);
    try {
      expect(await Promise.race([first.held.then(() => 'held'), applying])).toBe('held');
      const second = await store.applyAll([batchOf(topic, 1, requests(1))]);
      expect(second.outcomes.map((o) => o.kind)).toEqual(['applied']);
    } finally {
      first.release();
    }
    expect((await applying).outcomes.map((o) => o.kind)).toEqual(['applied']);
    const [count] = await world.rows(
      `SELECT count(*)::int AS n FROM "${schema}".item_refresh_state WHERE status = 'requested'`,
    );
    expect(count!.n).toBe(2 * perBatch);
  }, 180_000);

  it.each([
    ['met for the first time', false],
    ['already projected', true],
  ])(
    'a transaction changing an Item %s waits for one already changing it, and folds over its rows',
    async (_, known) => {
      const schema = known ? 'known_item' : 'new_item';
      await createProjectionSchema(db, schema);
      await world.rows('DELETE FROM consumer_checkpoints WHERE consumer = $1', [schema]);
      const store = new ProjectionStore(db, { schema, consumer: schema });
      const itemId = `item-${randomUUID()}`;
      const e = eventsFor(itemId);
      const requested = topicName('refreshRequested', '');
      const outcomes = topicName('refreshOutcomes', '');
      // A known Item: an earlier request is projected (committed) before the race.
      const earlier = known ? [e.requested(`${itemId}-r0`, undefined, '2026-11-24T09:00:00Z')] : [];
      if (known) await store.applyAll([batchOf(requested, 0, earlier)]);

      // A request (one topic) is being applied when its acceptance (another topic) arrives.
      const first = holdNextTransaction(schema);
      const requesting = store.applyAll([
        batchOf(requested, 0, [e.requested(`${itemId}-r1`)], earlier.length),
      ]);
      let accepting: ReturnType<ProjectionStore['applyAll']> | undefined;
      try {
        expect(await Promise.race([first.held.then(() => 'held'), requesting])).toBe('held');
        accepting = store.applyAll([
          batchOf(outcomes, 0, [e.accepted(`${itemId}-r1`, '2026-11-24T10:00:02Z')]),
        ]);
        accepting.catch(() => undefined);
        await waitForValue('the second transaction waiting for the Item', async () => {
          const [row] = await world.rows(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event = 'transactionid'
                AND query LIKE '%projection_item_locks%'`,
          );
          return (row!.n as number) > 0 ? true : undefined;
        });
      } finally {
        first.release();
      }
      expect((await requesting).outcomes.map((o) => o.kind)).toEqual(['applied']);
      expect((await accepting).outcomes.map((o) => o.kind)).toEqual(['applied']);
      // The acceptance folded over the request's rows.
      const [item] = await world.rows(
        `SELECT status, latest_request_id FROM "${schema}".item_refresh_state WHERE item_id = $1`,
        [itemId],
      );
      expect(item).toEqual({ status: 'refreshing', latest_request_id: `${itemId}-r1` });
      const requests = await world.rows(
        `SELECT request_id, requested_at IS NOT NULL AS requested, accepted_at IS NOT NULL AS accepted
           FROM "${schema}".refresh_requests WHERE item_id = $1 ORDER BY request_id`,
        [itemId],
      );
      expect(requests).toEqual([
        ...(known ? [{ request_id: `${itemId}-r0`, requested: true, accepted: false }] : []),
        { request_id: `${itemId}-r1`, requested: true, accepted: true },
      ]);
    },
    60_000,
  );

  it('reads on while a transaction waits: a record published after a blocked batch is applied first', async () => {
    const requests = topicName('refreshRequested', world.prefix);
    const partitionOf = (key: string) => (murmur2(Buffer.from(key)) & 0x7fffffff) % 3;
    const itemOn = (partition: number) => {
      for (;;) {
        const id = `item-${randomUUID()}`;
        if (partitionOf(id) === partition) return id;
      }
    };
    const [blocked, later] = [itemOn(0), itemOn(1)];
    const projector = await world.startProjector();
    try {
      // Partition 0's checkpoint, held by another session: a transaction applying a batch of
      // partition 0 waits for it.
      await world.rows(
        `INSERT INTO consumer_checkpoints (consumer, topic, partition, next_offset)
       VALUES ($1, $2, 0, 0) ON CONFLICT DO NOTHING`,
        [PROJECTOR_CONSUMER, requests],
      );
      const holder = new Client({ connectionString: world.db.url });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(
          `SELECT 1 FROM consumer_checkpoints
          WHERE consumer = $1 AND topic = $2 AND partition = 0 FOR UPDATE`,
          [PROJECTOR_CONSUMER, requests],
        );
        await world.publish(eventsFor(blocked).requested(`${blocked}-r1`));
        await waitForValue('the projector waiting for the checkpoint', async () => {
          const [row] = await world.rows(
            `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          );
          return (row!.n as number) > 0 ? true : undefined;
        });

        await world.publish(eventsFor(later).requested(`${later}-r1`));

        await world.until(
          'the later record applied while the first waits',
          'SELECT item_id FROM item_refresh_state WHERE item_id = ANY($1)',
          [[blocked, later]],
          (rows) => rows.length === 1 && rows[0]!.item_id === later,
        );
      } finally {
        await holder.query('COMMIT').catch(() => undefined);
        await holder.end();
      }
      await world.until(
        'the first record applied once the checkpoint is free',
        'SELECT item_id FROM item_refresh_state WHERE item_id = $1',
        [blocked],
        (rows) => rows.length === 1,
      );
    } finally {
      await projector.close();
    }
  });

  it('applies a batch once when the commit fails after every write was made', async () => {
    // A deferred constraint trigger runs at COMMIT, after the batch's writes: the first commit
    // of the projector's checkpoint fails, as if the process died between write and commit.
    await world.rows(`CREATE SEQUENCE commit_attempts`);
    await world.rows(`
      CREATE FUNCTION fail_first_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.consumer = 'projector' AND nextval('commit_attempts') = 1 THEN
          RAISE EXCEPTION 'simulated crash at commit';
        END IF;
        RETURN NEW;
      END $$`);
    await world.rows(`
      CREATE CONSTRAINT TRIGGER fail_first_commit AFTER UPDATE ON consumer_checkpoints
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_first_commit()`);
    try {
      const projector = await world.startProjector();
      const itemId = `item-${randomUUID()}`;
      const e = eventsFor(itemId);
      await world.publish(e.requested(`${itemId}-r1`));
      await world.untilStatus(itemId, 'requested');
      await world.publish(e.accepted(`${itemId}-r1`, '2026-11-24T10:00:02Z'));
      await world.publish(e.ready(`${itemId}-x1`, '2026-11-24T10:01:00Z'));
      await world.untilStatus(itemId, 'ready');
      expect(
        await metric(projector.url, /projector_batches_total\{[^}]*result="failed"[^}]*\} (\d+)/g),
      ).toBe(1);
      expect(projector.logLines.join('\n')).toContain('simulated crash at commit');
      expect(await world.item(itemId)).toMatchObject({ refreshes: 1, status: 'ready' });
      const copies = await world.rows(
        'SELECT event_type, count(*)::int AS n FROM projection_events WHERE item_id = $1 GROUP BY 1',
        [itemId],
      );
      expect(copies.every((c) => c.n === 1)).toBe(true);
      expect(copies).toHaveLength(3);
      await projector.close();
    } finally {
      await world.rows('DROP TRIGGER fail_first_commit ON consumer_checkpoints');
    }
  });

  let run = 0;
  /**
   * Projects the history topic by topic and in the given interleaving, its batches grouped into
   * transactions of 1-6 (by `choices` too): the rows must agree with each other and with the
   * library's fold of the history in time order.
   */
  async function sameRows(
    plan: RefreshPlan[][],
    {
      choices,
      duplicates,
      readFirst,
    }: { choices: number[]; duplicates: [number, number][]; readFirst?: string },
  ) {
    run += 1;
    const topics = historyEvents(plan, `run${run}`);
    const results = [];
    for (const [name, events, groupSizes] of [
      ['canonical', topicByTopic(topics), []],
      [
        'interleaved',
        interleave(topics, choices, duplicates, readFirst),
        choices.map((c) => 1 + (c % 6)),
      ],
    ] as const) {
      const schema = `prop_${name}`;
      await createProjectionSchema(db, schema);
      await world.rows('DELETE FROM consumer_checkpoints WHERE consumer = $1', [schema]);
      await applyInOrder(new ProjectionStore(db, { schema, consumer: schema }), events, groupSizes);
      results.push({
        items: await snapshot(world, schema, 'item_refresh_state'),
        requests: await snapshot(world, schema, 'refresh_requests'),
        reports: await snapshot(world, schema, 'item_reports'),
      });
    }
    expect(results[1]).toEqual(results[0]);

    const folded = [...foldEvents(inTimeOrder(topics)).values()];
    const normalItems = (rows: Row[]) =>
      rows
        .map((row) => ({ ...itemToRow(rowToItem(row as ItemRow)), ...ARRIVAL_ORDER }))
        .sort((a, b) => String(a.item_id).localeCompare(String(b.item_id)));
    const normalRequests = (rows: Row[]) =>
      rows
        .map((row) => requestToRow(rowToRequest(row as RequestRow)))
        .sort((a, b) => String(a.request_id).localeCompare(String(b.request_id)));
    const stored = (table: string) => world.rows(`SELECT * FROM prop_interleaved.${table}`);
    expect(normalItems(await stored('item_refresh_state'))).toEqual(
      normalItems(folded.map((p) => itemToRow(p.item))),
    );
    expect(normalRequests(await stored('refresh_requests'))).toEqual(
      normalRequests(folded.flatMap((p) => [...p.requests.values()].map(requestToRow))),
    );
  }

  it('any interleaving of the topics, with redeliveries, gives the same rows (fast-check)', async () => {
    await fc.assert(fc.asyncProperty(historyPlan, interleaving, sameRows), { numRuns: 12 });
  });

  it('long histories read with one topic far ahead give the same rows (fast-check)', async () => {
    await fc.assert(fc.asyncProperty(longHistoryPlan, interleaving, sameRows), { numRuns: 5 });
  });

  it('rebuilds from the log into tables equal to the live ones, while the projector runs', async () => {
    const projector = await world.startProjector();
    const itemIds = Array.from({ length: 6 }, () => `item-${randomUUID()}`);
    for (const [n, itemId] of itemIds.entries()) {
      const e = eventsFor(itemId);
      await world.publish(e.requested(`${itemId}-r1`), e.requested(`${itemId}-r2`));
      await world.publish(e.accepted(`${itemId}-r2`, '2026-11-24T10:00:02Z'));
      if (n % 2 === 0) {
        const report = { id: `${itemId}-x1`, receivedAt: '2026-11-24T10:01:00.000Z' };
        await world.publish(e.ready(report.id, report.receivedAt));
        await world.publish(
          e.fetched(`${itemId}-f1`, '2026-11-24T10:01:20.000Z', report, [`${itemId}-r2`]),
        );
      } else await world.publish(e.failed(`${itemId}-r1`, '2026-11-24T10:00:01Z'));
    }
    for (const [n, itemId] of itemIds.entries()) {
      await world.untilStatus(itemId, n % 2 === 0 ? 'ready' : 'refreshing');
    }
    await world.untilCaughtUp();
    expect(
      await world.rows(
        `SELECT count(*) FILTER (WHERE status = 'failed')::int AS failed,
                count(fetched_at)::int AS fetched
           FROM refresh_requests WHERE item_id = ANY($1)`,
        [itemIds],
      ),
    ).toEqual([{ failed: 3, fetched: 3 }]);
    const live: Record<string, Row[]> = {};
    for (const table of PROJECTION_TABLES) live[table] = await snapshot(world, 'public', table);

    const report = await rebuildProjection({
      db,
      kafka: world.kafka,
      topicPrefix: world.prefix,
      logger: quietLogger,
    });
    expect(Number(report.events)).toBe(live.projection_events!.length);
    for (const table of PROJECTION_TABLES) {
      expect({ table, rows: await snapshot(world, 'public', table) }).toEqual({
        table,
        rows: live[table],
      });
    }
    const schemas = await world.rows(
      `SELECT 1 FROM information_schema.schemata WHERE schema_name = 'projection_rebuild'`,
    );
    expect(schemas).toEqual([]);

    // The running projector carries on from the swapped-in checkpoints.
    const later = `item-${randomUUID()}`;
    await world.publish(eventsFor(later).requested(`${later}-r1`));
    await world.untilStatus(later, 'requested');
    await projector.close();
  });
});
