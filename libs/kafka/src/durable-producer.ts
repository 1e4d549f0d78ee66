import type { Kafka, Message, Producer } from 'kafkajs';
import { partitioner } from './kafka-client';

export type NotStoredKind = 'timeout' | 'kafka' | 'overloaded' | 'closed';

/**
 * Records were not confirmed stored. `kind` says why: Kafka refused or failed the send, the
 * caller's time-out passed first, too many records were already waiting, or the producer was
 * closed. The caller decides what that means (the ingress answers 503; the worker's outbox
 * publishes again later).
 */
export class NotStoredError extends Error {
  readonly code = 'NOT_STORED';

  constructor(
    readonly kind: NotStoredKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'NotStoredError';
  }
}

export interface DurableProducerOptions {
  /** A send not acknowledged by then is reported as not stored (default: no time-out of ours). */
  readonly timeoutMs?: number;
  /** Records waiting or in flight beyond which new sends are refused at once (default: none). */
  readonly maxPending?: number;
  /** Records per produce request (default 1000); one send's records always travel together. */
  readonly maxBatch?: number;
}

/** One record for `topic` (a full name, prefix included). */
export interface OutgoingRecord {
  readonly topic: string;
  readonly message: Message;
}

interface Pending {
  readonly records: readonly OutgoingRecord[];
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  timer?: NodeJS.Timeout;
  settled: boolean;
  /** Still in the queue (not yet taken into a request). */
  queued: boolean;
}

const DEFAULT_MAX_BATCH = 1000;

/**
 * The project's one Kafka producer: a send resolves only once every in-sync replica has its
 * records (idempotent producer, acks=all), and never says so for records Kafka did not keep.
 *
 * Group commit: one produce request is in flight at a time, and every send that arrives while it
 * is goes out together in the next one. Under load each request carries many records; when idle,
 * a record leaves at once. (kafkajs sends each `send()` as its own request and the idempotent
 * producer allows one in flight, so without this each send would queue behind every other.)
 *
 * A failed send replaces the producer. When a reply is lost and kafkajs's retries run out,
 * kafkajs rolls the partition's sequence number back although the broker may have written the
 * batch; the next batch, different records with the same sequence, would then be taken by the
 * broker for a copy of the first, acknowledged and dropped. A new producer gets a new producer
 * id, whose sequences start afresh, so that cannot happen. (With one request in flight, no other
 * send is using the old producer when it is replaced.)
 *
 * A time-out answers the caller but cannot recall a request already sent: records reported as
 * not stored because Kafka was slow may still land. A record that times out before its turn is
 * never sent.
 */
export class DurableProducer {
  private producer: Producer;
  private connected: Promise<void> | undefined;
  private queue: Pending[] = [];
  private queuedRecords = 0;
  private inFlightRecords = 0;
  private sending = false;
  /** The running pump, awaited by `disconnect`. */
  private pumping: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: DurableProducerOptions = {},
  ) {
    this.producer = this.newProducer();
  }

  /** Connects now, so start-up fails when Kafka cannot be reached (sends connect on demand). */
  async connect(): Promise<void> {
    this.closed = false;
    await this.ensureConnected();
  }

  /** Refuses what has not been sent yet, lets the request in flight finish, then disconnects. */
  async disconnect(): Promise<void> {
    this.closed = true;
    const unsent = this.queue.splice(0);
    this.queuedRecords = 0;
    for (const p of unsent) {
      p.queued = false;
      settle(p, new NotStoredError('closed', 'the producer was closed'));
    }
    await this.pumping;
    this.connected = undefined;
    await this.producer.disconnect().catch(() => undefined);
  }

  /** Resolves once every record is stored; rejects with NotStoredError otherwise. */
  send(records: readonly OutgoingRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    if (this.closed) {
      return Promise.reject(new NotStoredError('closed', 'the producer was closed'));
    }
    const max = this.options.maxPending;
    if (max !== undefined && this.queuedRecords + this.inFlightRecords + records.length > max) {
      return Promise.reject(
        new NotStoredError('overloaded', `${max} records already waiting for Kafka`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = { records, resolve, reject, settled: false, queued: true };
      const timeoutMs = this.options.timeoutMs;
      if (timeoutMs !== undefined) {
        pending.timer = setTimeout(() => this.timedOut(pending, timeoutMs), timeoutMs);
      }
      this.queue.push(pending);
      this.queuedRecords += records.length;
      if (!this.sending) this.pumping = this.pump();
    });
  }

  private timedOut(pending: Pending, timeoutMs: number): void {
    // Left in the queue (the pump skips it), but no longer counted as waiting.
    if (pending.queued) this.queuedRecords -= pending.records.length;
    settle(pending, new NotStoredError('timeout', `Kafka did not confirm within ${timeoutMs} ms`));
  }

  private async pump(): Promise<void> {
    // Cleared in the same turn as the queue is found empty, so a send arriving afterwards
    // always starts a pump of its own.
    this.sending = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const batch = this.nextBatch();
        if (batch.length === 0) continue;
        this.inFlightRecords = batch.reduce((n, p) => n + p.records.length, 0);
        try {
          await this.ensureConnected();
          await this.producer.sendBatch({ acks: -1, topicMessages: byTopic(batch) });
          for (const p of batch) settle(p);
        } catch (error) {
          const reason = new NotStoredError(
            'kafka',
            `Kafka did not store the records: ${(error as Error).message}`,
            { cause: error },
          );
          for (const p of batch) settle(p, reason);
          this.replaceProducer();
        } finally {
          this.inFlightRecords = 0;
        }
      }
    } finally {
      this.sending = false;
    }
  }

  /**
   * Whole sends from the head of the queue, up to maxBatch records (at least one send); sends
   * that timed out while waiting are dropped, never sent.
   */
  private nextBatch(): Pending[] {
    const max = this.options.maxBatch ?? DEFAULT_MAX_BATCH;
    const batch: Pending[] = [];
    let records = 0;
    let taken = 0;
    for (const p of this.queue) {
      if (!p.settled) {
        if (batch.length > 0 && records + p.records.length > max) break;
        records += p.records.length;
        batch.push(p);
        p.queued = false;
      }
      taken += 1;
    }
    this.queue.splice(0, taken);
    this.queuedRecords -= records;
    return batch;
  }

  private ensureConnected(): Promise<void> {
    this.connected ??= this.producer.connect().catch((error: unknown) => {
      this.connected = undefined;
      throw error;
    });
    return this.connected;
  }

  /**
   * Sends go on with a new producer at once; the old one disconnects in the background. kafkajs's
   * disconnect waits for every request it still counts as pending, and after a broker died that
   * can be forever: awaited here, it stopped every later send of the process (a worker's last
   * outcomes were never published, its outbox relay waiting behind them).
   */
  private replaceProducer(): void {
    const old = this.producer;
    this.producer = this.newProducer();
    this.connected = undefined;
    void old.disconnect().catch(() => undefined);
  }

  private newProducer(): Producer {
    return this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: partitioner,
      allowAutoTopicCreation: false,
    });
  }
}

function byTopic(batch: readonly Pending[]): { topic: string; messages: Message[] }[] {
  const topics = new Map<string, Message[]>();
  for (const p of batch) {
    for (const { topic, message } of p.records) {
      const messages = topics.get(topic) ?? [];
      messages.push(message);
      topics.set(topic, messages);
    }
  }
  return [...topics].map(([topic, messages]) => ({ topic, messages }));
}

function settle(pending: Pending, error?: Error): void {
  if (pending.settled) return;
  pending.settled = true;
  clearTimeout(pending.timer);
  if (error) pending.reject(error);
  else pending.resolve();
}
