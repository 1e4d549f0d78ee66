import {
  Module,
  type DynamicModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { Kafka } from 'kafkajs';
import { EventPublisher } from './event-publisher';
import { createKafka, type KafkaOptions } from './kafka-client';
import { KafkaReadiness } from './kafka-readiness';

export const KAFKA = Symbol('KAFKA');
export const KAFKA_OPTIONS = Symbol('KAFKA_OPTIONS');

/**
 * Provides the Kafka client, the event publisher and the readiness check. The publisher connects
 * at start-up (failing start-up if the broker is unreachable) and disconnects on shutdown.
 */
@Module({})
export class KafkaModule implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    private readonly publisher: EventPublisher,
    private readonly readiness: KafkaReadiness,
  ) {}

  static forRoot(options: KafkaOptions): DynamicModule {
    return {
      module: KafkaModule,
      global: true,
      providers: [
        { provide: KAFKA_OPTIONS, useValue: options },
        { provide: KAFKA, useFactory: () => createKafka(options) },
        {
          provide: EventPublisher,
          useFactory: (kafka: Kafka) => new EventPublisher(kafka, options.topicPrefix),
          inject: [KAFKA],
        },
        {
          provide: KafkaReadiness,
          useFactory: (kafka: Kafka) => new KafkaReadiness(kafka),
          inject: [KAFKA],
        },
      ],
      exports: [KAFKA, KAFKA_OPTIONS, EventPublisher, KafkaReadiness],
    };
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.publisher.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([this.publisher.disconnect(), this.readiness.close()]);
  }
}
