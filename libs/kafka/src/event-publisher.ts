import {
  type ChangelogRecord,
  deadLetterRecord,
  encodeEvent,
  topicKeyForEvent,
  topicName,
  type CashflowEvent,
  type DeadLetterReason,
  type DeadLetterSource,
  type RefusedRecord,
} from '@cashflow/contracts';
import type { Kafka } from 'kafkajs';
import { recordFailure, tracer } from '@cashflow/observability';
import { SpanKind } from '@opentelemetry/api';
import { DurableProducer, type DurableProducerOptions } from './durable-producer';
import { contextOf, eventAttributes } from './trace-context';

/**
 * Publishes contract events (validated and encoded by the contracts library) and dead-letter
 * records (built by the contracts library's `deadLetterRecord`) through one DurableProducer: a
 * send resolves only once every in-sync replica has the records, and rejects with
 * NotStoredError otherwise. The options (time-out, overload bound) are the producer's.
 */
export class EventPublisher {
  private readonly producer: DurableProducer;

  constructor(
    kafka: Kafka,
    private readonly topicPrefix: string,
    options: DurableProducerOptions = {},
  ) {
    this.producer = new DurableProducer(kafka, options);
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }

  /**
   * Publishes events together and in order (per topic); resolves once all are stored. Each
   * traced event gets a `publish <topic>` span in its own trace, ended when Kafka has it.
   */
  async publish(...events: CashflowEvent[]): Promise<void> {
    const records = events.map((event) => ({
      topic: topicName(topicKeyForEvent(event.type), this.topicPrefix),
      message: encodeEvent(event),
    }));
    const spans = records.flatMap(({ topic }, i) => {
      const event = events[i]!;
      if (!event.metadata.traceparent) return [];
      return [
        tracer().startSpan(
          `publish ${topic}`,
          {
            kind: SpanKind.PRODUCER,
            attributes: { ...eventAttributes(event, topic), 'messaging.operation.type': 'send' },
          },
          contextOf(event.metadata),
        ),
      ];
    });
    try {
      await this.producer.send(records);
    } catch (error) {
      for (const span of spans) recordFailure(span, error);
      throw error;
    } finally {
      for (const span of spans) span.end();
    }
  }

  /** Publishes transactions changelog records together, in order; resolves once all are stored. */
  publishChangelog(records: readonly ChangelogRecord[]): Promise<void> {
    const topic = topicName('transactions', this.topicPrefix);
    return this.producer.send(records.map((message) => ({ topic, message })));
  }

  /**
   * Copies a record that cannot be used to the dead-letter topic, with the reason in dlq_*
   * headers (see `deadLetterRecord`); resolves once it is stored.
   */
  deadLetter(
    record: RefusedRecord,
    reason: DeadLetterReason,
    source: DeadLetterSource,
    consumer: string,
    now: Date = new Date(),
  ): Promise<void> {
    const letter = deadLetterRecord(record, reason, source, consumer, now);
    return this.producer.send([
      { topic: topicName('deadLetter', this.topicPrefix), message: letter },
    ]);
  }
}
