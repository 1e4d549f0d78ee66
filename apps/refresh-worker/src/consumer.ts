import { EventPublisher, KAFKA, KafkaEventsServer } from '@cashflow/kafka';
import { METRICS_REGISTRY, type Logger } from '@cashflow/observability';
import type { INestApplication } from '@nestjs/common';
import type { RefreshWorkerConfig } from './config';

/** The Kafka consumer, as a NestJS transport under the worker's @EventPattern handlers. */
export function connectConsumer(
  app: INestApplication,
  config: RefreshWorkerConfig,
  logger: Logger,
): void {
  app.connectMicroservice(
    {
      strategy: new KafkaEventsServer({
        kafka: app.get(KAFKA),
        publisher: app.get(EventPublisher),
        topicPrefix: config.kafka.topicPrefix,
        groupId: config.groupId,
        maxInFlight: config.refresh.maxInFlight,
        shutdownGraceMs: config.refresh.shutdownGraceMs,
        logger: logger.child({ component: 'consumer' }),
        registry: app.get(METRICS_REGISTRY),
      }),
    },
    { inheritAppConfig: true },
  );
}
