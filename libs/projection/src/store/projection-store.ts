import { queryRows } from '@cashflow/persistence';
import type { DataSource, EntityManager } from 'typeorm';
import { foldItem, type PositionedEvent } from '../rules/fold';
import { consumerCheckpoints } from './checkpoints';
import {
  acceptancesIn,
  changesRefreshState,
  initialItem,
  reportsReceivedIn,
  requestIdsNeeded,
  type ItemState,
  type ReportFacts,
  type RequestState,
} from '../rules/refresh-projection';
import { earliestAnswerAt, latestAnsweredAt } from '../rules/report-answers';
import { newTimings, type RequestTimings } from './request-timings';
import {
  ITEM_COLUMNS,
  REPORT_COLUMNS,
  REQUEST_COLUMNS,
  itemToRow,
  reportToRow,
  requestToRow,
  rowToItem,
  rowToReport,
  rowToRequest,
  type ItemRow,
  type ReportRow,
  type RequestRow,
} from './rows';

/** An event as consumed: where it was read and the record's Kafka timestamp. */
export interface ConsumedEvent extends PositionedEvent {
  /** The record's timestamp (ms since the epoch, as Kafka gives it). */
  readonly kafkaTimestamp: string;
}

/** One partition's batch: its offset range (dead-lettered records included) and its events. */
export interface Batch {
  readonly topic: string;
  readonly partition: number;
  readonly firstOffset: string;
  readonly lastOffset: string;
  readonly events: readonly ConsumedEvent[];
}

/** W3C trace context as events carry it. */
export interface TraceContext {
  readonly traceparent: string;
  readonly tracestate?: string;
}

function traceOf(row: { traceparent: string; tracestate: string | null }): TraceContext {
  return {
    traceparent: row.traceparent,
    ...(row.tracestate ? { tracestate: row.tracestate } : {}),
  };
}

/** A request completed by a report: which report, and whose request. */
export interface Completion {
  readonly itemId: string;
  readonly requestId: string;
  readonly reportEventId: string;
}

/** What became of one batch of a transaction. */
export type BatchOutcome =
  | {
      readonly kind: 'applied';
      /** Events applied; those below the checkpoint were already applied and are skipped. */
      readonly applied: readonly ConsumedEvent[];
      readonly nextOffset: string;
    }
  /**
   * The checkpoint is behind the batch (moved back by hand; a rebuild never moves it behind the
   * projector): read again from there.
   */
  | { readonly kind: 'seek'; readonly offset: string };

/** One transaction's result: each batch's outcome, in the order given, and what they did. */
export interface GroupResult {
  readonly outcomes: readonly BatchOutcome[];
  /** Steps of requests first timeable in these batches (none when nothing was applied). */
  readonly timings: RequestTimings;
  /** Requests a report in these batches completed (or took over), for the report's span links. */
  readonly completed: readonly Completion[];
}

/** One batch applied on its own: its outcome and what it did. */
export type BatchResult =
  | (Extract<BatchOutcome, { kind: 'applied' }> & Omit<GroupResult, 'outcomes'>)
  | Extract<BatchOutcome, { kind: 'seek' }>;

const NO_TIMINGS: RequestTimings = { toAccept: [], toReady: [] };

export interface StoreOptions {
  /** Schema holding the tables: `public`, or the rebuild's own. */
  readonly schema: string;
  /** Name in consumer_checkpoints. */
  readonly consumer: string;
}

/**
 * Writes the projection. Each batch is one PostgreSQL transaction: the event copies, the Items'
 * and requests' new rows, and the partition's checkpoint (next offset to read) commit together,
 * so a batch is applied entirely or not at all, and a batch delivered again is recognised by the
 * checkpoint and skipped. The Items a batch changes are locked for the transaction (their rows
 * in projection_item_locks, in key order), so batches of several partitions, replicas and a
 * rebuild can be applied at once.
 */
export class ProjectionStore {
  private readonly t: {
    items: string;
    requests: string;
    reports: string;
    events: string;
    locks: string;
  };

  constructor(
    private readonly db: DataSource,
    private readonly options: StoreOptions,
  ) {
    const schema = quoteIdent(options.schema);
    this.t = {
      items: `${schema}.item_refresh_state`,
      requests: `${schema}.refresh_requests`,
      reports: `${schema}.item_reports`,
      events: `${schema}.projection_events`,
      locks: `${schema}.projection_item_locks`,
    };
  }

  /** Next offset per `topic:partition` stored for this consumer. */
  checkpoints(): Promise<Map<string, bigint>> {
    return consumerCheckpoints(this.db, this.options.consumer);
  }

  async apply(batch: Batch): Promise<BatchResult> {
    const { outcomes, ...did } = await this.applyAll([batch]);
    const outcome = outcomes[0]!;
    return outcome.kind === 'seek' ? outcome : { ...outcome, ...did };
  }

  /**
   * Applies batches of several partitions in one transaction (group commit: one round of
   * statements for everything a fetch brought). A partition's batches must come in offset order.
   * Items are folded over the events of every batch, each partition's in its order; the topics
   * of a batch group interleave as they may anyway.
   */
  async applyAll(batches: readonly Batch[]): Promise<GroupResult> {
    return this.db.transaction(async (m) => {
      const stored = await this.lockCheckpoints(m, batches);
      const outcomes: BatchOutcome[] = [];
      const fresh: ConsumedEvent[] = [];
      const moved = new Map<string, { topic: string; partition: number }>();
      for (const batch of batches) {
        const key = `${batch.topic}:${batch.partition}`;
        const at = stored.get(key)!;
        if (BigInt(at) < BigInt(batch.firstOffset)) {
          outcomes.push({ kind: 'seek', offset: at });
          continue;
        }
        const nextOffset = (BigInt(batch.lastOffset) + 1n).toString();
        if (BigInt(at) >= BigInt(nextOffset)) {
          outcomes.push({ kind: 'applied', applied: [], nextOffset: at });
          continue;
        }
        const applied = batch.events.filter((e) => BigInt(e.position.offset) >= BigInt(at));
        fresh.push(...applied);
        stored.set(key, nextOffset);
        moved.set(key, { topic: batch.topic, partition: batch.partition });
        outcomes.push({ kind: 'applied', applied, nextOffset });
      }
      if (moved.size === 0) return { outcomes, timings: NO_TIMINGS, completed: [] };
      await this.copyEvents(m, fresh);
      const { timings, completed } = await this.project(m, fresh);
      const checkpoints = [...moved.entries()].map(([key, p]) => ({
        ...p,
        next: stored.get(key)!,
      }));
      await m.query(
        `UPDATE consumer_checkpoints c SET next_offset = u.next_offset, updated_at = now()
           FROM unnest($2::text[], $3::integer[], $4::bigint[]) AS u(topic, partition, next_offset)
          WHERE c.consumer = $1 AND c.topic = u.topic AND c.partition = u.partition`,
        [
          this.options.consumer,
          checkpoints.map((c) => c.topic),
          checkpoints.map((c) => c.partition),
          checkpoints.map((c) => c.next),
        ],
      );
      return { outcomes, timings, completed };
    });
  }

  /**
   * Locks the batches' checkpoints (created at 0 when new) in topic, partition order, the order
   * `projection rebuild`'s swap locks them in; answers each one's next offset by
   * `topic:partition`.
   */
  private async lockCheckpoints(
    m: EntityManager,
    batches: readonly Batch[],
  ): Promise<Map<string, string>> {
    const partitions = [
      ...new Map(batches.map((b) => [`${b.topic}:${b.partition}`, b] as const)).values(),
    ].sort((a, b) =>
      a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1,
    );
    const topics = partitions.map((p) => p.topic);
    const numbers = partitions.map((p) => p.partition);
    await m.query(
      `INSERT INTO consumer_checkpoints (consumer, topic, partition, next_offset)
       SELECT $1, topic, partition, 0
         FROM unnest($2::text[], $3::integer[]) WITH ORDINALITY AS p(topic, partition, n)
        ORDER BY n
       ON CONFLICT DO NOTHING`,
      [this.options.consumer, topics, numbers],
    );
    const rows = await queryRows<{ topic: string; partition: number; next_offset: string }>(
      m,
      `SELECT c.topic, c.partition, c.next_offset FROM consumer_checkpoints c
         JOIN unnest($2::text[], $3::integer[]) AS p(topic, partition)
           ON c.topic = p.topic AND c.partition = p.partition
        WHERE c.consumer = $1
        ORDER BY c.topic, c.partition FOR UPDATE OF c`,
      [this.options.consumer, topics, numbers],
    );
    return new Map(rows.map((r) => [`${r.topic}:${r.partition}`, r.next_offset]));
  }

  private async copyEvents(m: EntityManager, events: readonly ConsumedEvent[]): Promise<void> {
    if (events.length === 0) return;
    const rows = events.map(({ event, position, kafkaTimestamp }) => ({
      topic: position.topic,
      partition: position.partition,
      kafka_offset: position.offset,
      event_id: event.metadata.id,
      event_type: event.type,
      item_id: event.data.item_id,
      event_time: event.metadata.time,
      kafka_timestamp: new Date(Number(kafkaTimestamp)).toISOString(),
      metadata: event.metadata,
      data: event.data,
    }));
    await m.query(
      `INSERT INTO ${this.t.events}
         (topic, partition, kafka_offset, event_id, event_type, item_id, event_time,
          kafka_timestamp, metadata, data)
       SELECT topic, partition, kafka_offset, event_id, event_type, item_id, event_time,
              kafka_timestamp, metadata, data
         FROM jsonb_to_recordset($1::jsonb) AS r(
           topic text, partition integer, kafka_offset bigint, event_id text, event_type text,
           item_id text, event_time timestamptz, kafka_timestamp timestamptz, metadata jsonb,
           data jsonb)
       ON CONFLICT DO NOTHING`,
      [JSON.stringify(rows)],
    );
  }

  /**
   * Loads what the batch needs of its Items' slices, folds the events and writes what changed;
   * returns the steps of requests the batch made timeable.
   */
  private async project(
    m: EntityManager,
    events: readonly ConsumedEvent[],
  ): Promise<{ timings: RequestTimings; completed: Completion[] }> {
    const byItem = new Map<string, ConsumedEvent[]>();
    for (const consumed of events) {
      if (!changesRefreshState(consumed.event)) continue;
      const id = consumed.event.data.item_id;
      const list = byItem.get(id) ?? [];
      list.push(consumed);
      byItem.set(id, list);
    }
    if (byItem.size === 0) return { timings: NO_TIMINGS, completed: [] };
    const itemIds = [...byItem.keys()];
    // Row locks, not advisory ones: an advisory lock per Item takes an entry of the server's
    // shared lock table (max_locks_per_transaction per server process, for every session
    // together), which two transactions of a few thousand Items filled. One statement, in key order: an
    // Item met for the first time gets its row (a concurrent inserter of it waits for this
    // transaction), a known one has its row locked (ON CONFLICT DO UPDATE locks the row it
    // conflicts with even when its WHERE updates nothing). Acquired in one order, so two
    // transactions never wait for each other in a circle.
    await m.query(
      `INSERT INTO ${this.t.locks} (item_id)
       SELECT id FROM unnest($1::text[]) AS id ORDER BY id
       ON CONFLICT (item_id) DO UPDATE SET item_id = EXCLUDED.item_id WHERE false`,
      [itemIds],
    );
    const items = new Map(
      (
        await queryRows<ItemRow>(
          m,
          `SELECT ${ITEM_COLUMNS.join(', ')} FROM ${this.t.items} WHERE item_id = ANY($1)`,
          [itemIds],
        )
      ).map((row) => [row.item_id as string, rowToItem(row)]),
    );
    const requests = await this.loadRequests(m, byItem, items);
    const reports = await this.loadReports(m, byItem);

    const itemsOut: ItemRow[] = [];
    const requestsOut: RequestRow[] = [];
    const reportsOut: ReportRow[] = [];
    const timings = { toAccept: [] as number[], toReady: [] as number[] };
    const completed: Completion[] = [];
    for (const [id, list] of byItem) {
      const loadedRequests = requests.get(id) ?? new Map<string, RequestState>();
      const loadedReports = reports.get(id) ?? new Map<string, ReportFacts>();
      const state = foldItem(
        {
          item: items.get(id) ?? initialItem(id).item,
          requests: loadedRequests,
          reports: loadedReports,
        },
        list,
      );
      itemsOut.push(itemToRow(state.item));
      for (const request of state.requests.values()) {
        const before = loadedRequests.get(request.requestId);
        if (before !== request) {
          requestsOut.push(requestToRow(request));
          const { toAccept, toReady } = newTimings(before, request);
          if (toAccept !== null) timings.toAccept.push(toAccept);
          if (toReady !== null) timings.toReady.push(toReady);
          if (request.reportEventId && request.reportEventId !== before?.reportEventId) {
            completed.push({
              itemId: id,
              requestId: request.requestId,
              reportEventId: request.reportEventId,
            });
          }
        }
      }
      for (const report of state.reports.values()) {
        if (loadedReports.get(report.eventId) !== report) reportsOut.push(reportToRow(report));
      }
    }
    await upsert(m, this.t.requests, REQUEST_COLUMNS, ['item_id', 'request_id'], requestsOut);
    await upsert(m, this.t.items, ITEM_COLUMNS, ['item_id'], itemsOut);
    await insertReports(m, this.t.reports, reportsOut);
    return { timings, completed };
  }

  /**
   * The trace context of each request, keyed `item_id/request_id`: its RefreshRequested's
   * ce_traceparent (the upstream's trace), or else its RefreshAccepted's (the trace the worker
   * started for it), as copied into the events table. Requests without either are absent.
   */
  async requestTraces(
    requests: readonly { itemId: string; requestId: string }[],
  ): Promise<Map<string, TraceContext>> {
    if (requests.length === 0) return new Map();
    const rows = await queryRows<{
      item_id: string;
      request_id: string;
      traceparent: string;
      tracestate: string | null;
    }>(
      this.db,
      `SELECT DISTINCT ON (r.item_id, r.request_id) r.item_id, r.request_id,
              e.metadata->>'traceparent' AS traceparent, e.metadata->>'tracestate' AS tracestate
         FROM unnest($1::text[], $2::text[]) AS r(item_id, request_id)
         JOIN ${this.t.events} e ON e.item_id = r.item_id
          AND ((e.event_type = 'RefreshRequested' AND e.event_id = r.request_id)
            OR (e.event_type = 'RefreshAccepted' AND e.data->>'refresh_request_id' = r.request_id))
        WHERE e.metadata ? 'traceparent'
        ORDER BY r.item_id, r.request_id, (e.event_type = 'RefreshRequested') DESC`,
      [requests.map((r) => r.itemId), requests.map((r) => r.requestId)],
    );
    return new Map(rows.map((r) => [`${r.item_id}/${r.request_id}`, traceOf(r)]));
  }

  /** The trace context of report events by id, as copied into the events table. */
  async eventTraces(eventIds: readonly string[]): Promise<Map<string, TraceContext>> {
    if (eventIds.length === 0) return new Map();
    const rows = await queryRows<{
      event_id: string;
      traceparent: string;
      tracestate: string | null;
    }>(
      this.db,
      `SELECT DISTINCT ON (event_id) event_id, metadata->>'traceparent' AS traceparent,
              metadata->>'tracestate' AS tracestate
         FROM ${this.t.events}
        WHERE event_id = ANY($1) AND metadata ? 'traceparent'`,
      [[...new Set(eventIds)]],
    );
    return new Map(rows.map((r) => [r.event_id, traceOf(r)]));
  }

  /**
   * The requests `evolve` may change: those the events name, each Item's latest, every accepted
   * one (a report completes them), the overdue ones a report in the batch answers (it completes
   * them too, rule 13), and those completed by a report received after one in the batch that
   * answers them too (it takes them over).
   */
  private async loadRequests(
    m: EntityManager,
    byItem: ReadonlyMap<string, readonly ConsumedEvent[]>,
    items: ReadonlyMap<string, ItemState>,
  ): Promise<Map<string, Map<string, RequestState>>> {
    // A request is its Item's: another upstream may use the same id for another Item.
    const wanted = { itemIds: [] as string[], requestIds: [] as string[] };
    const reported = { itemIds: [] as string[], since: [] as string[], until: [] as string[] };
    for (const [id, list] of byItem) {
      const events = list.map((c) => c.event);
      for (const r of requestIdsNeeded(items.get(id), events)) {
        wanted.itemIds.push(id);
        wanted.requestIds.push(r);
      }
      const received = reportsReceivedIn(events).map((at) => Date.parse(at));
      if (received.length === 0) continue;
      reported.itemIds.push(id);
      reported.since.push(new Date(Math.min(...received)).toISOString());
      reported.until.push(latestAnsweredAt(new Date(Math.max(...received)).toISOString()));
    }
    // UNION ALL (a request found twice is the same row, kept once below): no sort of wide rows.
    // Each lookup is a LATERAL index lookup, kept one by `OFFSET 0`: without it PostgreSQL
    // flattens the subquery into a join and, with statistics behind a fast-growing table (a
    // catch-up from zero), hashes a sequential scan of the whole table in every transaction, a
    // cost that grows with the table instead of the batch. The parts for reports are left out of
    // a batch without reports, most batches of a topic.
    const columns = REQUEST_COLUMNS.map((c) => `r.${c}`).join(', ');
    const perLookup = (lookups: string, where: string) =>
      `SELECT r.* FROM ${lookups}
         CROSS JOIN LATERAL (SELECT ${columns} FROM ${this.t.requests} r WHERE ${where} OFFSET 0) r`;
    const parts = [
      perLookup(
        'unnest($1::text[], $2::text[]) AS w(item_id, request_id)',
        'r.item_id = w.item_id AND r.request_id = w.request_id',
      ),
      perLookup(
        'unnest($3::text[]) AS a(item_id)',
        `r.item_id = a.item_id AND r.status = 'accepted'`,
      ),
    ];
    const params: unknown[] = [wanted.itemIds, wanted.requestIds, [...byItem.keys()]];
    if (reported.itemIds.length > 0) {
      params.push(reported.itemIds, reported.since, reported.until);
      const lookups =
        'unnest($4::text[], $5::timestamptz[], $6::timestamptz[]) AS q(item_id, since, until)';
      parts.push(
        perLookup(
          lookups,
          `r.item_id = q.item_id AND r.report_event_id IS NOT NULL AND r.accepted_at <= q.until
           AND coalesce(r.ready_at, r.failed_at) >= q.since`,
        ),
        perLookup(
          lookups,
          `r.item_id = q.item_id AND r.status = 'overdue' AND r.accepted_at <= q.until`,
        ),
      );
    }
    const rows = await queryRows<RequestRow>(m, parts.join('\n UNION ALL\n'), params);
    return groupByItem(rows.map(rowToRequest), (r) => r.requestId);
  }

  /** For each acceptance in the batch, the earliest stored report of its Item answering it. */
  private async loadReports(
    m: EntityManager,
    byItem: ReadonlyMap<string, readonly ConsumedEvent[]>,
  ): Promise<Map<string, Map<string, ReportFacts>>> {
    const lookups = { itemIds: [] as string[], since: [] as string[] };
    for (const [id, list] of byItem) {
      for (const at of acceptancesIn(list.map((c) => c.event))) {
        lookups.itemIds.push(id);
        lookups.since.push(earliestAnswerAt(at));
      }
    }
    if (lookups.itemIds.length === 0) return new Map();
    const rows = await queryRows<ReportRow>(
      m,
      `SELECT ${REPORT_COLUMNS.map((c) => `r.${c}`).join(', ')}
         FROM unnest($1::text[], $2::timestamptz[]) AS q(item_id, since)
         CROSS JOIN LATERAL (
           SELECT * FROM ${this.t.reports} r
            WHERE r.item_id = q.item_id AND r.received_at >= q.since
            ORDER BY r.received_at, r.event_id LIMIT 1) r`,
      [lookups.itemIds, lookups.since],
    );
    return groupByItem(rows.map(rowToReport), (r) => r.eventId);
  }
}

function groupByItem<T extends { readonly itemId: string }>(
  values: readonly T[],
  key: (value: T) => string,
): Map<string, Map<string, T>> {
  const byItem = new Map<string, Map<string, T>>();
  for (const value of values) {
    const map = byItem.get(value.itemId) ?? new Map<string, T>();
    map.set(key(value), value);
    byItem.set(value.itemId, map);
  }
  return byItem;
}

/** Multi-row insert of JSON rows; rows already there are left as they are. */
/**
 * Reports not loaded for the batch: new ones, or ones already stored. A report first known from
 * its fetch (rule 10) is stored as found by webhook; the ReportReady itself, read later, may say
 * polling (rule 13), and then that wins, as it does in the fold whichever comes first.
 */
async function insertReports(
  m: EntityManager,
  table: string,
  rows: readonly ReportRow[],
): Promise<void> {
  if (rows.length === 0) return;
  const list = REPORT_COLUMNS.join(', ');
  await m.query(
    `INSERT INTO ${table} AS r (${list})
     SELECT ${list} FROM json_populate_recordset(NULL::${table}, $1::json)
     ON CONFLICT (item_id, received_at, event_id) DO UPDATE SET found_by = 'polling'
      WHERE EXCLUDED.found_by = 'polling' AND r.found_by <> 'polling'`,
    [JSON.stringify(rows)],
  );
}

/**
 * Multi-row upsert of JSON rows (one parameter, however many rows). `json`, not `jsonb`: the rows
 * are read once, so building a `jsonb` value of the whole parameter first only costs (4,000
 * request rows: 15-20% less time in PostgreSQL).
 */
async function upsert(
  m: EntityManager,
  table: string,
  columns: readonly string[],
  key: readonly string[],
  rows: readonly object[],
): Promise<void> {
  if (rows.length === 0) return;
  const list = columns.join(', ');
  const updates = columns
    .filter((c) => !key.includes(c))
    .map((c) => `${c} = EXCLUDED.${c}`)
    .join(', ');
  await m.query(
    `INSERT INTO ${table} (${list})
     SELECT ${list} FROM json_populate_recordset(NULL::${table}, $1::json)
     ON CONFLICT (${key.join(', ')}) DO UPDATE SET ${updates}, updated_at = now()`,
    [JSON.stringify(rows)],
  );
}

export function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain identifier: ${name}`);
  return `"${name}"`;
}
