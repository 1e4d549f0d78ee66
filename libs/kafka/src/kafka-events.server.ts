import {
  DECODE_ERROR_CODES,
  EVENT_TYPES,
  decodeEvent,
  topicKeyForEvent,
  topicName,
  type CashflowEvent,
  type DecodeError,
  type DecodeErrorCode,
  type EventType,
} from '@cashflow/contracts';
import { BaseRpcContext, Server, type CustomTransportStrategy } from '@nestjs/microservices';
import type { Kafka } from 'kafkajs';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { isObservable, lastValueFrom, throwError, type Observable } from 'rxjs';
import { Catch, type RpcExceptionFilter } from '@nestjs/common';
import type { EventPublisher } from './event-publisher';
import { ParallelConsumer, type ConsumedMessage } from './parallel-consumer';
import { assertTopicsExist } from './topic-admin';
import { inConsumeSpan } from './trace-context';

/**
 * Thrown by a handler for a record that decodes but must not be handled (e.g. a request id that
 * belongs to another request): the record goes to the dead-letter topic with this reason, at once.
 */
export class UnusableRecord extends Error {
  constructor(
    readonly code: DecodeErrorCode,
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnusableRecord';
  }
}

/**
 * Lets a handler's errors reach the consumer as they are thrown. Nest's default RPC filter would
 * log them and replace them with "Internal server error", and the consumer needs the error itself:
 * to dead-letter an UnusableRecord, and to say why it gave a record up. Put
 * `@UseFilters(KafkaHandlerErrors)` on every controller served by KafkaEventsServer.
 */
@Catch()
export class KafkaHandlerErrors implements RpcExceptionFilter<unknown> {
  catch(exception: unknown): Observable<never> {
    return throwError(() => exception);
  }
}

/** What a handler gets besides the event: where the message came from. */
export class KafkaEventContext extends BaseRpcContext<[ConsumedMessage]> {
  get message(): ConsumedMessage {
    return this.getArgs()[0];
  }
}

export interface KafkaEventsServerOptions {
  readonly kafka: Kafka;
  readonly publisher: EventPublisher;
  readonly topicPrefix: string;
  readonly groupId: string;
  readonly maxInFlight: number;
  readonly shutdownGraceMs: number;
  readonly logger: Logger;
  readonly sessionTimeoutMs?: number;
  /**
   * Where to count group joins (`kafka_consumer_group_joins_total`; rebalances show there) and
   * dead letters (`kafka_dead_letters_total`).
   */
  readonly registry?: Registry;
  /** A handler failing this long sends its record to the dead-letter topic (HANDLER_FAILED). */
  readonly giveUpAfterMs?: number;
}

/**
 * A NestJS transport for contract events: handlers stay ordinary `@EventPattern('RefreshRequested')`
 * methods that receive a decoded, validated event. Under them runs the ParallelConsumer: many
 * messages in flight, offsets committed below the lowest unfinished one. Records that do not
 * decode go to the dead-letter topic with the reason, and consumption goes on.
 */
export class KafkaEventsServer extends Server implements CustomTransportStrategy {
  private consumer: ParallelConsumer | undefined;
  private deadLetters: Counter<'group' | 'topic' | 'code'> | undefined;
  /**
   * Each event type's handler, looked up once at start: Nest's getHandlerByPattern first tries
   * the pattern as JSON, which for a plain event type throws and catches an error per message.
   */
  private readonly handlers = new Map<
    EventType,
    (data: unknown, ctx: KafkaEventContext) => unknown
  >();

  constructor(private readonly options: KafkaEventsServerOptions) {
    super();
  }

  listen(callback: (error?: unknown) => void): void {
    const joins = this.options.registry
      ? new Counter({
          name: 'kafka_consumer_group_joins_total',
          help: 'Times the consumer joined its group: 1 after start, +1 for every rebalance.',
          labelNames: ['group'],
          registers: [this.options.registry],
        })
      : undefined;
    const expected = new Map<string, EventType[]>();
    for (const pattern of this.getHandlers().keys()) {
      if (!EVENT_TYPES.includes(pattern as EventType)) {
        callback(
          new Error(`@EventPattern('${pattern}') is not an event type (${EVENT_TYPES.join(', ')})`),
        );
        return;
      }
      this.handlers.set(pattern as EventType, this.getHandlers().get(pattern)!);
      const topic = topicName(topicKeyForEvent(pattern as EventType), this.options.topicPrefix);
      expected.set(topic, [...(expected.get(topic) ?? []), pattern as EventType]);
    }
    if (this.options.registry) {
      this.deadLetters = new Counter({
        name: 'kafka_dead_letters_total',
        help: 'Records this consumer copied to the dead-letter topic, by source topic and dlq_error_code.',
        labelNames: ['group', 'topic', 'code'],
        registers: [this.options.registry],
      });
      // Every series from the start, so the first dead letter is an increase (alert rules).
      for (const topic of expected.keys()) {
        for (const code of DECODE_ERROR_CODES) {
          this.deadLetters.inc({ group: this.options.groupId, topic, code }, 0);
        }
      }
    }
    this.consumer = new ParallelConsumer(
      this.options.kafka,
      {
        groupId: this.options.groupId,
        topics: [...expected.keys()],
        maxInFlight: this.options.maxInFlight,
        logger: this.options.logger,
        onGroupJoin: () => joins?.inc({ group: this.options.groupId }),
        onGiveUp: (message, error) => this.giveUp(message, error),
        ...(this.options.giveUpAfterMs ? { giveUpAfterMs: this.options.giveUpAfterMs } : {}),
        ...(this.options.sessionTimeoutMs
          ? { sessionTimeoutMs: this.options.sessionTimeoutMs }
          : {}),
      },
      (message) => this.dispatch(message, expected.get(message.topic) ?? []),
    );
    assertTopicsExist(this.options.kafka, [...expected.keys()])
      .then(() => this.consumer!.start())
      .then(
        () => callback(),
        (error: unknown) => callback(error),
      );
  }

  private async dispatch(message: ConsumedMessage, expected: EventType[]): Promise<void> {
    const decoded = decodeEvent(message, expected);
    if (!decoded.ok) return this.deadLetter(message, decoded.error);
    const event: CashflowEvent = decoded.value;
    const handler = this.handlers.get(event.type);
    if (!handler) throw new Error(`no handler for ${event.type}`);
    try {
      await inConsumeSpan(event, message.topic, async (): Promise<void> => {
        // What Nest's transformToObservable + lastValueFrom do, without building an Observable
        // for the common case: a handler's promise (an error filter's answer is an Observable).
        const result: unknown = await handler(event, new KafkaEventContext([message]));
        if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
      });
    } catch (error) {
      if (!(error instanceof UnusableRecord)) throw error;
      await this.deadLetter(message, {
        code: error.code,
        field: error.field,
        message: error.message,
        issues: [],
      });
    }
  }

  /** A record its handler kept failing on goes to the dead-letter topic with the last error. */
  private giveUp(message: ConsumedMessage, error: unknown): Promise<void> {
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return this.deadLetter(message, {
      code: 'HANDLER_FAILED',
      field: '(handler)',
      message: `the handler kept failing: ${reason}`,
      issues: [],
    });
  }

  private async deadLetter(message: ConsumedMessage, error: DecodeError): Promise<void> {
    const position = { topic: message.topic, partition: message.partition, offset: message.offset };
    await this.options.publisher.deadLetter(message, error, position, this.options.groupId);
    this.deadLetters?.inc({ group: this.options.groupId, topic: message.topic, code: error.code });
    this.options.logger.warn(
      { ...position, code: error.code, field: error.field },
      'dead-lettered a record',
    );
  }

  /** Graceful: stop fetching, let handlers finish within the grace period, commit, leave. */
  async close(): Promise<void> {
    const result = await this.consumer?.stop(this.options.shutdownGraceMs);
    if (result && !result.drained) {
      this.options.logger.warn('stopped with messages unfinished; they will be redelivered');
    }
  }

  /** The consumer underneath, for metrics and tests. */
  unwrap<T>(): T {
    return this.consumer as T;
  }

  on(): void {
    // Consumer events are reported through logs and metrics, not through Nest's event hooks.
  }
}
