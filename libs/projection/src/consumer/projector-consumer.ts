import {
  TOPICS,
  decodeEvent,
  topicName,
  type CashflowEvent,
  type TopicKey,
} from '@cashflow/contracts';
import { Batched } from '@cashflow/persistence';
import {
  Holdings,
  RESTARTS_LEFT_TO_US,
  restartWhenGivenUp,
  contextOf,
  eventAttributes,
  linksTo,
  stickyAssigner,
  type EventPublisher,
} from '@cashflow/kafka';
import { tracer, type Logger } from '@cashflow/observability';
import { SpanKind } from '@opentelemetry/api';
import {
  PartitionAssigners,
  type Consumer,
  type ConsumerEndBatchProcessEvent,
  type EachBatchPayload,
  type Kafka,
} from 'kafkajs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECTED_TOPICS } from '../projected-topics';
import type {
  Batch,
  BatchOutcome,
  ConsumedEvent,
  GroupResult,
  ProjectionStore,
} from '../store/projection-store';
import type { ProjectorMetrics } from './projector-metrics';

/**
 * A transaction takes the batches waiting (of partitions read together) up to this many events,
 * and at least one batch.
 */
const EVENTS_PER_TRANSACTION = 5_000;
/** Transactions at once; more batches wait and go together in the next. */
const TRANSACTIONS_AT_ONCE = 2;
/**
 * Bytes a fetch brings at most (an eighth of it per partition); also how many bytes of records
 * read may wait to be applied before the projector stops reading (see handle).
 */
const FETCH_BYTES = 4 * 1024 * 1024;
/** How often Kafka is told the offsets applied (see commitApplied). */
const COMMIT_EVERY_MS = 5_000;

export interface ProjectorConsumerOptions {
  readonly groupId: string;
  readonly topicPrefix: string;
  /** Name used in dead-letter records. */
  readonly consumerName: string;
  /**
   * Copy undecodable records to the dead-letter topic (default). A rebuild turns this off: the
   * live projector already dead-lettered them.
   */
  readonly deadLetter?: boolean;
  /** Partitions whose batches are handled at once (default 256: every partition of a fetch). */
  readonly concurrency?: number;
  /** KAFKA_SESSION_TIMEOUT_MS (default 30 s). */
  readonly sessionTimeoutMs?: number;
  readonly logger: Logger;
}

/**
 * Reads the event topics in batches and hands each to the store, which applies it and records
 * the partition's next offset in the same transaction. The stored offset is the truth: Kafka's
 * committed offsets only tell Kafka tools how far the projector is. A record that cannot be
 * decoded is copied to the dead-letter topic before its batch commits; a batch PostgreSQL
 * refuses is retried (with backoff, heartbeating) until it is applied or the consumer stops.
 */
export class ProjectorConsumer {
  private readonly consumer: Consumer;
  /** What this consumer holds, sent with its next join so the group's leader can keep it here. */
  private readonly holdings = new Holdings();
  private readonly topics: Map<string, TopicKey>;
  /** Per `topic:partition`, the work queued for it: batches and skipped records, in order. */
  private readonly partitionWork = new Map<string, Promise<void>>();
  private stopping = false;
  /** The newest batch's heartbeat (see handle). */
  private heartbeat: () => Promise<void> = () => Promise.resolve();
  /** Per `topic:partition`, how many times this consumer moved its reading position back. */
  private readonly seeks = new Map<string, number>();
  /** Next offsets applied since Kafka was last told, by `topic:partition`. */
  private readonly applied = new Map<
    string,
    { topic: string; partition: number; offset: string }
  >();
  private commitTimer?: NodeJS.Timeout;
  /** Bytes of records read and not yet applied, up to a fetch's worth (FETCH_BYTES). */
  private readonly reading = new ByteBudget(FETCH_BYTES);
  /**
   * Group commit: the batches of one fetch (every partition's at once) are applied in as few
   * transactions as their size allows, rather than one transaction per partition's batch.
   */
  private readonly transactions = new Batched<Batch, BatchOutcome>(
    (batches) => this.applyTogether(batches),
    {
      concurrency: TRANSACTIONS_AT_ONCE,
      weigh: (batch) => batch.events.length,
      maxWeight: EVENTS_PER_TRANSACTION,
      gatherTurn: true,
    },
  );

  constructor(
    kafka: Kafka,
    private readonly store: ProjectionStore,
    private readonly publisher: Pick<EventPublisher, 'deadLetter'>,
    private readonly metrics: ProjectorMetrics,
    private readonly options: ProjectorConsumerOptions,
  ) {
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: 3000,
      maxWaitTimeInMs: 250,
      // What is held in memory is bounded by bytes: a fetch being read and at most a fetch's
      // worth of records waiting to be applied (see handle; kafkajs decodes a record into about
      // five times its size in objects). Larger fetches did not make catch-up faster with group
      // commit, only the heap larger (32 MB fetches: 780 MB peak RSS; 8 MB: 560 MB); with reading
      // ahead, 4 MiB fetches held 100 MB less at the peak than 8 MiB and caught up about as fast.
      maxBytesPerPartition: FETCH_BYTES / 8,
      maxBytes: FETCH_BYTES,
      // A rebalance moves only the partitions the balance needs (see stickyAssigner).
      partitionAssigners: [stickyAssigner(this.holdings), PartitionAssigners.roundRobin],
      // kafkajs never restarts the consumer itself; restartWhenGivenUp does, failures included.
      retry: RESTARTS_LEFT_TO_US,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      this.holdings.update(event.payload.memberAssignment);
      this.metrics.groupJoins.inc({ group: options.groupId });
    });
    this.topics = new Map(
      PROJECTED_TOPICS.map((key) => [topicName(key, options.topicPrefix), key] as const),
    );
    // Every topic's count exists from the start, so the first dead letter shows as an increase.
    for (const topic of this.topics.keys()) metrics.deadLetters.inc({ topic }, 0);
  }

  async start(): Promise<void> {
    this.consumer.on(this.consumer.events.END_BATCH_PROCESS, (event) =>
      this.onSkippedRecords(event),
    );
    await this.consumer.connect();
    this.commitTimer = setInterval(() => void this.commitApplied(), COMMIT_EVERY_MS).unref();
    await this.consumer.subscribe({ topics: [...this.topics.keys()], fromBeginning: true });
    const run = () =>
      this.consumer.run({
        eachBatchAutoResolve: false,
        // kafkajs would commit after every batch; see commitApplied.
        autoCommit: false,
        partitionsConsumedConcurrently: this.options.concurrency ?? 256,
        eachBatch: (payload) => this.handle(payload),
      });
    restartWhenGivenUp(this.consumer, {
      run,
      stopping: () => this.stopping,
      logger: this.options.logger,
    });
    await run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.commitTimer);
    // Batches being applied finish (those not started give up), then Kafka hears how far they got.
    await Promise.all(this.partitionWork.values());
    await this.commitApplied();
    await this.consumer.disconnect();
  }

  /**
   * Tells Kafka how far the projector has applied, at most every few seconds. Kafka's committed
   * offsets only inform Kafka tools (consumer-group lag); the stored checkpoints decide where
   * reading resumes, so a commit that fails or comes late loses nothing. kafkajs's own auto-commit
   * would send one OffsetCommit per batch, dozens per fetch with group commit.
   */
  private async commitApplied(): Promise<void> {
    if (this.applied.size === 0) return;
    // Only partitions still held: a batch read before a rebalance may finish after its partition
    // moved, and its offset must not undo what the new owner has told Kafka.
    const offsets = [...this.applied.values()].filter((p) => this.holds(p.topic, p.partition));
    this.applied.clear();
    if (offsets.length === 0) return;
    await this.consumer
      .commitOffsets(offsets)
      .catch((error: unknown) =>
        this.options.logger.debug({ err: error }, 'committing offsets to Kafka failed; skipped'),
      );
  }

  private async handle(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const first = batch.firstOffset();
    if (first === null) return;
    const events = await this.decode(batch);
    // The batch's last offset, not its last message's: a transaction marker after the messages
    // is passed too, so a partition ending in one is read to its end.
    const lastOffset = batch.lastOffset();
    const { topic, partition, highWatermark } = batch;
    const key = `${topic}:${partition}`;
    const bytes = batch.messages.reduce(
      (sum, m) => sum + (m.value?.length ?? 0) + (m.key?.length ?? 0),
      0,
    );
    // A batch waiting to be applied keeps its decoded events and none of kafkajs's records (about
    // 70 MB less at the peak of a catch-up): nothing below refers to `batch` or `payload`, since
    // every closure made here shares one scope and would keep them alive, and the payload's own
    // functions keep the batch (kafkajs makes them beside it). So heartbeats go through the newest
    // batch's payload, and staleness and ownership are this consumer's own (`seeks`, `holds`).
    this.heartbeat = heartbeatOf(payload);
    const seeks = this.seeks.get(key) ?? 0;
    await this.reading.acquire(bytes);
    const applied = this.inOrder(key, () =>
      this.applyUntilDone(
        { topic, partition, firstOffset: first, lastOffset, events },
        highWatermark,
        {
          // A batch read before a rebalance took its partition away is left to the new owner;
          // one read before this consumer moved the partition's position back is stale.
          isRunning: () => this.holds(topic, partition) && (this.seeks.get(key) ?? 0) === seeks,
          heartbeat: () => this.heartbeat(),
        },
      ),
    );
    void applied
      .then((done) => {
        if (!done) return;
        const offset = (BigInt(lastOffset) + 1n).toString();
        this.applied.set(key, { topic, partition, offset });
      })
      .catch((error: unknown) =>
        this.options.logger.error({ err: error, topic, partition }, 'applying a batch failed'),
      )
      .finally(() => this.reading.release(bytes));
    // Reading goes on while the batch waits to be applied: kafkajs fetches again only once every
    // batch of a fetch is handed back, and its next fetch starts from the offsets resolved here.
    // Where reading resumes after a restart or rebalance is the stored checkpoint, which only an
    // applied batch moves; Kafka's committed offsets are only told what was applied.
    payload.resolveOffset(lastOffset);
  }

  private holds(topic: string, partition: number): boolean {
    return this.holdings.owned.some((p) => p.topic === topic && p.partition === partition);
  }

  /**
   * Records kafkajs reads but never hands over (only transaction markers or aborted records)
   * still move the checkpoint past them, in order with the partition's batches; otherwise a
   * partition ending in them would never reach its end.
   */
  private onSkippedRecords(event: ConsumerEndBatchProcessEvent): void {
    const { topic, partition, batchSize, firstOffset, lastOffset, highWatermark } = event.payload;
    if (batchSize !== 0 || firstOffset === null || this.stopping) return;
    void this.inOrder(`${topic}:${partition}`, () =>
      this.applyUntilDone(
        { topic, partition, firstOffset, lastOffset, events: [] },
        highWatermark,
        {
          isRunning: () => !this.stopping,
          heartbeat: () => Promise.resolve(),
        },
      ),
    )
      .then((done) => {
        const offset = (BigInt(lastOffset) + 1n).toString();
        if (done) this.applied.set(`${topic}:${partition}`, { topic, partition, offset });
      })
      .catch((error: unknown) =>
        this.options.logger.error({ err: error, topic, partition }, 'skipping records failed'),
      );
  }

  /** Runs a partition's work after the work already queued for it. */
  private inOrder<T>(key: string, work: () => Promise<T>): Promise<T> {
    const result = (this.partitionWork.get(key) ?? Promise.resolve()).then(work);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.partitionWork.set(key, settled);
    void settled.then(() => {
      if (this.partitionWork.get(key) === settled) this.partitionWork.delete(key);
    });
    return result;
  }

  private async decode(batch: EachBatchPayload['batch']): Promise<ConsumedEvent[]> {
    const key = this.topics.get(batch.topic)!;
    const expected = TOPICS[key].events;
    const events: ConsumedEvent[] = [];
    for (const message of batch.messages) {
      const position = { topic: batch.topic, partition: batch.partition, offset: message.offset };
      const decoded = decodeEvent(message, expected);
      if (decoded.ok) {
        events.push({ event: decoded.value, position, kafkaTimestamp: message.timestamp });
        continue;
      }
      if (this.options.deadLetter === false) continue;
      this.options.logger.warn(
        { ...position, code: decoded.error.code, field: decoded.error.field },
        'undecodable record dead-lettered',
      );
      await this.publisher.deadLetter(message, decoded.error, position, this.options.consumerName);
      this.metrics.deadLetters.inc({ topic: batch.topic });
    }
    return events;
  }

  /**
   * Applies a batch, retrying (with backoff, heartbeating) while the consumer runs. True once
   * applied; false when it seeks back or stops first.
   */
  private async applyUntilDone(
    batch: Batch,
    highWatermark: string,
    run: { isRunning(): boolean; heartbeat(): Promise<void> },
  ): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      if (!run.isRunning() || this.stopping) return false;
      try {
        const result = await this.transactions.call(batch);
        if (result.kind === 'seek') {
          this.metrics.batches.inc({ result: 'seek' });
          this.options.logger.info(
            { topic: batch.topic, partition: batch.partition, offset: result.offset },
            'checkpoint behind the batch (moved back); reading again from it',
          );
          const key = `${batch.topic}:${batch.partition}`;
          this.seeks.set(key, (this.seeks.get(key) ?? 0) + 1);
          this.consumer.seek({
            topic: batch.topic,
            partition: batch.partition,
            offset: result.offset,
          });
          return false;
        }
        this.metrics.batches.inc({ result: result.applied.length > 0 ? 'applied' : 'skipped' });
        this.recordLag(
          batch.topic,
          batch.partition,
          highWatermark,
          result.nextOffset,
          batch.events,
        );
        return true;
      } catch (error) {
        this.metrics.batches.inc({ result: 'failed' });
        this.options.logger.error(
          { err: error, topic: batch.topic, partition: batch.partition, attempt },
          'applying a batch failed; retrying',
        );
        await sleep(Math.min(10_000, 200 * 2 ** attempt));
        await run.heartbeat().catch(() => undefined);
      }
    }
  }

  /** One transaction for batches of several partitions; what it did is measured here, once. */
  private async applyTogether(batches: readonly Batch[]): Promise<readonly BatchOutcome[]> {
    const timer = this.metrics.batchSeconds.startTimer();
    const startedAt = Date.now();
    const result = await this.store.applyAll(batches);
    timer();
    for (const outcome of result.outcomes) {
      if (outcome.kind !== 'applied') continue;
      for (const { event } of outcome.applied) this.metrics.applied.inc({ type: event.type });
    }
    for (const s of result.timings.toAccept) {
      this.metrics.refreshSeconds.observe({ stage: 'to_accept' }, s);
    }
    for (const s of result.timings.toReady) {
      this.metrics.refreshSeconds.observe({ stage: 'to_ready' }, s);
    }
    this.traceApplied(result, startedAt);
    return result.outcomes;
  }

  /**
   * One `project <type>` span per traced event applied, in the event's own trace, timed as its
   * batch. Where the batch completes a request, the report's trace and the request's trace are
   * linked: a report's span links the requests it completed, and when the report came first (topics
   * are read in any order) the request's own event's span links the report. Best effort: a failed
   * look-up only leaves the links out, and nothing here delays the consumer.
   */
  private traceApplied(result: GroupResult, startedAt: number): void {
    const spans = result.outcomes
      .flatMap((outcome) => (outcome.kind === 'applied' ? outcome.applied : []))
      .filter(({ event }) => event.metadata.traceparent)
      .map(({ event, position: { topic } }) => ({
        event,
        span: tracer().startSpan(
          `project ${event.type}`,
          {
            kind: SpanKind.CONSUMER,
            startTime: startedAt,
            attributes: { ...eventAttributes(event, topic), 'messaging.operation.type': 'process' },
          },
          contextOf(event.metadata),
        ),
      }));
    const endedAt = Date.now();
    const end = () => spans.forEach(({ span }) => span.end(endedAt));
    const recording = spans.filter(({ span }) => span.isRecording());
    if (recording.length === 0 || result.completed.length === 0) return end();
    const byReport = new Map(recording.map((s) => [s.event.metadata.id, s]));
    const byRequest = new Map(
      recording.flatMap((s) => {
        const requestId = requestIdOf(s.event);
        return requestId ? [[`${s.event.data.item_id}/${requestId}`, s] as const] : [];
      }),
    );
    const reportFirst = result.completed.filter((c) => byReport.has(c.reportEventId));
    const requestFirst = result.completed.filter(
      (c) => !byReport.has(c.reportEventId) && byRequest.has(`${c.itemId}/${c.requestId}`),
    );
    if (reportFirst.length === 0 && requestFirst.length === 0) return end();
    Promise.all([
      this.store.requestTraces(reportFirst),
      this.store.eventTraces(requestFirst.map((c) => c.reportEventId)),
    ])
      .then(([requestTraces, reportTraces]) => {
        for (const [reportId, { span }] of byReport) {
          const mine = reportFirst.filter((c) => c.reportEventId === reportId);
          if (mine.length === 0) continue;
          span.setAttribute('cashflow.completed_requests', mine.length);
          span.addLinks(
            linksTo(mine.flatMap((c) => requestTraces.get(`${c.itemId}/${c.requestId}`) ?? [])),
          );
        }
        for (const c of requestFirst) {
          const report = reportTraces.get(c.reportEventId);
          if (report) byRequest.get(`${c.itemId}/${c.requestId}`)!.span.addLinks(linksTo([report]));
        }
      })
      .catch((error: unknown) =>
        this.options.logger.debug({ err: error }, 'traces to link not found; links left out'),
      )
      .finally(end);
  }

  private recordLag(
    topic: string,
    partition: number,
    highWatermark: string,
    nextOffset: string,
    events: readonly ConsumedEvent[],
  ): void {
    const labels = { topic, partition: String(partition) };
    const behind = Number(BigInt(highWatermark) - BigInt(nextOffset));
    this.metrics.lagEvents.set(labels, Math.max(0, behind));
    // Caught up, nothing left to read: no lag, however old the last record was. Both gauges are
    // set only here, so that age would otherwise stay until the partition's next record.
    const last = events[events.length - 1];
    const age = behind > 0 && last ? (Date.now() - Number(last.kafkaTimestamp)) / 1000 : 0;
    this.metrics.lagSeconds.set(labels, Math.max(0, age));
  }
}

/** The request an event is about: its own id for a request, the one it answers for an outcome. */
function requestIdOf(event: CashflowEvent): string | undefined {
  switch (event.type) {
    case 'RefreshRequested':
      return event.metadata.id;
    case 'RefreshAccepted':
    case 'RefreshFailed':
      return event.data.refresh_request_id;
    default:
      return undefined;
  }
}

/** The payload's heartbeat, made here so that it keeps only the payload alive (see handle). */
function heartbeatOf(payload: EachBatchPayload): () => Promise<void> {
  return () => payload.heartbeat();
}

/**
 * A budget of bytes held: `acquire` waits while the bytes held reach the limit, except that an
 * empty budget always lets one batch in, however large. Written here rather than taken from a
 * semaphore library: weighted semaphores (async-mutex's) never admit a weight above their limit,
 * and a single partition's batch may exceed it.
 */
class ByteBudget {
  private held = 0;
  private waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async acquire(bytes: number): Promise<void> {
    while (this.held > 0 && this.held + bytes > this.limit) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.held += bytes;
  }

  release(bytes: number): void {
    this.held -= bytes;
    const waiting = this.waiting;
    this.waiting = [];
    waiting.forEach((wake) => wake());
  }
}
