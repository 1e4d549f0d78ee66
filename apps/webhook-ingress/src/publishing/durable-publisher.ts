import { encodeEvent, topicKeyForEvent, topicName, type CashflowEvent } from '@cashflow/contracts';
import { partitioner } from '@cashflow/kafka';
import type { Kafka, Message, Producer } from 'kafkajs';

/** Why a record was not confirmed stored. Every kind means: answer 503, Plaid will retry. */
export class NotStoredError extends Error {
  constructor(
    readonly kind: 'timeout' | 'kafka' | 'overloaded' | 'closed',
    message: string,
  ) {
    super(message);
    this.name = 'NotStoredError';
  }
}

export interface DurablePublisherOptions {
  /** A send not acknowledged by then is reported as not stored. */
  readonly timeoutMs: number;
  /** Records waiting or in flight beyond which new ones are refused at once. */
  readonly maxPending: number;
  /** Records per produce request. */
  readonly maxBatch?: number;
}

interface Pending {
  readonly topic: string;
  readonly message: Message;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  timer?: NodeJS.Timeout;
  settled: boolean;
}

/**
 * Stores records in Kafka and says so only once every in-sync replica has them (idempotent
 * producer, acks=all).
 *
 * Group commit: one produce request is in flight at a time, and everything that arrives while it
 * is carries on the next one. Under load each request carries many records; when idle, a record
 * leaves at once. (kafkajs sends each `send()` as its own request and the idempotent producer
 * allows one in flight, so without this a webhook would queue behind every other one.)
 *
 * A failed send replaces the producer. kafkajs's idempotent producer reuses the sequence numbers
 * of a failed batch for the next one; if the broker had in fact written the failed batch, it
 * would take the next, different records for a duplicate and drop them while acknowledging.
 * A new producer gets a new producer id, so that cannot happen.
 *
 * A time-out answers the caller but cannot recall a request already sent: a record reported as
 * not stored because Kafka was slow may still land, and Plaid's retry then lands again. Consumers
 * treat a repeated report for an Item as a no-op. A broker that is down fails the send outright
 * (the client's retries are short), so that case is never reported as not stored and then stored.
 */
export class DurablePublisher {
  private producer: Producer;
  private connected: Promise<void> | undefined;
  private queue: Pending[] = [];
  private sending = false;
  private inFlight = 0;
  private closed = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly topicPrefix: string,
    private readonly options: DurablePublisherOptions,
  ) {
    this.producer = this.newProducer();
  }

  async connect(): Promise<void> {
    await this.ensureConnected();
  }

  async disconnect(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0))
      settle(p, new NotStoredError('closed', 'publisher closed'));
    await this.producer.disconnect().catch(() => undefined);
  }

  /** Resolves once the event is stored; rejects with NotStoredError otherwise. */
  publishEvent(event: CashflowEvent): Promise<void> {
    const topic = topicName(topicKeyForEvent(event.type), this.topicPrefix);
    return this.send(topic, encodeEvent(event));
  }

  /** Resolves once the record is stored in `topic` (a full name, prefix included). */
  send(topic: string, message: Message): Promise<void> {
    if (this.closed) return Promise.reject(new NotStoredError('closed', 'publisher closed'));
    if (this.queue.length + this.inFlight >= this.options.maxPending) {
      return Promise.reject(
        new NotStoredError(
          'overloaded',
          `${this.options.maxPending} records already waiting for Kafka`,
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = { topic, message, resolve, reject, settled: false };
      // A record that times out before its turn is never sent.
      pending.timer = setTimeout(() => {
        const waited = `Kafka did not confirm within ${this.options.timeoutMs} ms`;
        settle(pending, new NotStoredError('timeout', waited));
      }, this.options.timeoutMs);
      this.queue.push(pending);
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const batch = this.queue.splice(0, this.options.maxBatch ?? 1000).filter((p) => !p.settled);
        if (batch.length === 0) continue;
        this.inFlight = batch.length;
        try {
          await this.ensureConnected();
          await this.producer.sendBatch({ acks: -1, topicMessages: byTopic(batch) });
          for (const p of batch) settle(p);
        } catch (error) {
          const reason = new NotStoredError(
            'kafka',
            `Kafka did not store the records: ${(error as Error).message}`,
          );
          for (const p of batch) settle(p, reason);
          await this.replaceProducer();
        } finally {
          this.inFlight = 0;
        }
      }
    } finally {
      this.sending = false;
    }
  }

  private ensureConnected(): Promise<void> {
    this.connected ??= this.producer.connect().catch((error: unknown) => {
      this.connected = undefined;
      throw error;
    });
    return this.connected;
  }

  private async replaceProducer(): Promise<void> {
    const old = this.producer;
    this.producer = this.newProducer();
    this.connected = undefined;
    await old.disconnect().catch(() => undefined);
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

function byTopic(batch: Pending[]): { topic: string; messages: Message[] }[] {
  const topics = new Map<string, Message[]>();
  for (const p of batch) {
    const messages = topics.get(p.topic) ?? [];
    messages.push(p.message);
    topics.set(p.topic, messages);
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
