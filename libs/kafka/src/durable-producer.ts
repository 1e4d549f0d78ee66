import type { Kafka, Message, PartitionerArgs, Producer, RecordMetadata } from 'kafkajs';
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
 * kafkajs (2.2.4) can report a send done that it never made for some partitions. Its send keeps
 * each broker's answer across its own retries and asks again only brokers without one; when a
 * partition's leader dies and the partition moves to a broker that had already answered for
 * others, the retry sends that partition nowhere and the send resolves (a broker kill lost 30
 * outcomes so, stamped published in the outbox). So every partition kafkajs put a record on in
 * its last attempt (seen through the partitioner) must be in the answer; a send missing one
 * counts as failed, and the caller sends it all again (consumers drop the copies by event id).
 *
 * A time-out answers the caller but cannot recall a request already sent: records reported as
 * not stored because Kafka was slow may still land. A record that times out before its turn is
 * never sent.
 */
export class DurableProducer {
  private producer: Producer;
  /** The partitions the current producer's send put records on, in kafkajs's latest attempt. */
  private targeted = new TargetedPartitions();
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
    [this.producer, this.targeted] = this.newProducer();
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
          this.targeted.clear();
          const stored = await this.producer.sendBatch({ acks: -1, topicMessages: byTopic(batch) });
          const missing = this.targeted.missingFrom(stored);
          if (missing.length > 0) {
            throw new Error(
              `kafkajs reported the send done without an answer for ${missing.join(', ')}`,
            );
          }
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
    [this.producer, this.targeted] = this.newProducer();
    this.connected = undefined;
    void old.disconnect().catch(() => undefined);
  }

  private newProducer(): [Producer, TargetedPartitions] {
    const targeted = new TargetedPartitions();
    const producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: () => {
        const choose = partitioner();
        return (args: PartitionerArgs) => {
          const chosen = choose(args);
          targeted.note(args.topic, chosen, args.message);
          return chosen;
        };
      },
      allowAutoTopicCreation: false,
    });
    return [producer, targeted];
  }
}

/**
 * The partitions one send's records were put on, as kafkajs's partitioner chose them. kafkajs
 * chooses again for every record on each of its attempts, so a record seen a second time starts
 * a new attempt (byTopic gives every record an object of its own); a keyless record may land
 * elsewhere then.
 */
class TargetedPartitions {
  private partitions = new Set<string>();
  private seen = new WeakSet<Message>();

  clear(): void {
    this.partitions = new Set();
    this.seen = new WeakSet();
  }

  note(topic: string, partition: number, message: Message): void {
    if (this.seen.has(message)) this.clear();
    this.seen.add(message);
    this.partitions.add(`${topic}[${partition}]`);
  }

  /** The targeted partitions without an answer in `stored` (what kafkajs's send resolved with). */
  missingFrom(stored: readonly RecordMetadata[] | undefined): string[] {
    const answered = new Set((stored ?? []).map((m) => `${m.topicName}[${m.partition}]`));
    return [...this.partitions].filter((p) => !answered.has(p));
  }
}

function byTopic(batch: readonly Pending[]): { topic: string; messages: Message[] }[] {
  const topics = new Map<string, Message[]>();
  for (const p of batch) {
    for (const { topic, message } of p.records) {
      const messages = topics.get(topic) ?? [];
      messages.push({ ...message });
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
