import { METRICS_REGISTRY, type Logger } from '@cashflow/observability';
import type { INestApplication, Type } from '@nestjs/common';
import type { ConsumerReadiness } from './consumer-readiness';
import { EventPublisher } from './event-publisher';
import { KafkaEventsServer } from './kafka-events.server';
import { KAFKA } from './kafka.module';

/** What an app's consumer needs from its configuration. */
export interface ConsumerSettings {
  readonly kafka: { readonly topicPrefix: string };
  readonly groupId: string;
  readonly sessionTimeoutMs: number;
}

/**
 * Connects an app's Kafka consumer (its own group) as a NestJS transport under the app's
 * @EventPattern handlers, and hands it to the app's readiness check, which also stops it first
 * on shutdown.
 */
export function connectConsumer(
  app: INestApplication,
  settings: ConsumerSettings,
  consumer: { maxInFlight: number; shutdownGraceMs: number; readiness: Type<ConsumerReadiness> },
  logger: Logger,
): void {
  const server = new KafkaEventsServer({
    kafka: app.get(KAFKA),
    publisher: app.get(EventPublisher),
    topicPrefix: settings.kafka.topicPrefix,
    groupId: settings.groupId,
    sessionTimeoutMs: settings.sessionTimeoutMs,
    maxInFlight: consumer.maxInFlight,
    shutdownGraceMs: consumer.shutdownGraceMs,
    logger: logger.child({ component: 'consumer' }),
    registry: app.get(METRICS_REGISTRY),
  });
  app.get(consumer.readiness).attach(server);
  app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
}
