import {
  DLQ_HEADERS,
  MAX_DEAD_LETTER_VALUE_BYTES,
  encodeEvent,
  topicKeyForEvent,
  topicName,
  type CashflowEvent,
  type DecodeError,
  type KafkaRecord,
} from '@cashflow/contracts';
import type { Kafka, Message, Producer, RecordMetadata } from 'kafkajs';
import { createHash } from 'node:crypto';
import { partitioner } from './kafka-client';

/** Where a record that could not be used was consumed from. */
export interface SourcePosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/**
 * Publishes contract events (validated and encoded by the contracts library) and dead-letter
 * records. Idempotent producer with acks=all: a send resolves only once every in-sync replica has
 * the record, and retries cannot duplicate or reorder it.
 */
export class EventPublisher {
  private readonly producer: Producer;
  private connected = false;

  constructor(
    kafka: Kafka,
    private readonly topicPrefix: string,
  ) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: partitioner,
      allowAutoTopicCreation: false,
    });
  }

  async connect(): Promise<void> {
    if (this.connected) return;
    await this.producer.connect();
    this.connected = true;
  }

  async disconnect(): Promise<void> {
    if (!this.connected) return;
    this.connected = false;
    await this.producer.disconnect();
  }

  /** Publishes events in order; events for the same topic go in one batch. */
  async publish(...events: CashflowEvent[]): Promise<RecordMetadata[]> {
    const byTopic = new Map<string, Message[]>();
    for (const event of events) {
      const topic = topicName(topicKeyForEvent(event.type), this.topicPrefix);
      const messages = byTopic.get(topic) ?? [];
      messages.push(encodeEvent(event));
      byTopic.set(topic, messages);
    }
    if (byTopic.size === 0) return [];
    return this.producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
  }

  /**
   * Copies a record that could not be decoded to the dead-letter topic, byte for byte, with the
   * reason in dlq_* headers; a value over MAX_DEAD_LETTER_VALUE_BYTES is truncated (see there).
   */
  async deadLetter(
    record: KafkaRecord,
    error: DecodeError,
    source: SourcePosition,
    consumer: string,
    now: Date = new Date(),
  ): Promise<void> {
    const headers: Record<string, Buffer | string> = {};
    for (const [name, value] of Object.entries(record.headers ?? {})) {
      if (value === undefined) continue;
      const last = Array.isArray(value) ? value[value.length - 1] : value;
      if (last !== undefined && !name.startsWith('dlq_')) headers[name] = last;
    }
    Object.assign(headers, {
      [DLQ_HEADERS.reason]: error.message.slice(0, 1000),
      [DLQ_HEADERS.errorCode]: error.code,
      [DLQ_HEADERS.field]: error.field,
      [DLQ_HEADERS.sourceTopic]: source.topic,
      [DLQ_HEADERS.sourcePartition]: String(source.partition),
      [DLQ_HEADERS.sourceOffset]: source.offset,
      [DLQ_HEADERS.consumer]: consumer,
      [DLQ_HEADERS.time]: now.toISOString(),
    });
    let value = typeof record.value === 'string' ? Buffer.from(record.value) : record.value;
    if (value && value.length > MAX_DEAD_LETTER_VALUE_BYTES) {
      headers[DLQ_HEADERS.valueTruncated] = String(value.length);
      headers[DLQ_HEADERS.valueSha256] = createHash('sha256').update(value).digest('hex');
      value = value.subarray(0, MAX_DEAD_LETTER_VALUE_BYTES);
    }
    await this.producer.send({
      topic: topicName('deadLetter', this.topicPrefix),
      acks: -1,
      messages: [{ key: record.key, value, headers }],
    });
  }
}
