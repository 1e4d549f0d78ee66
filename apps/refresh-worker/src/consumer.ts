import { EventPublisher, KAFKA, KafkaEventsServer } from '@cashflow/kafka';
import { METRICS_REGISTRY, type Logger } from '@cashflow/observability';
import type { INestApplication } from '@nestjs/common';
import type { RefreshWorkerConfig } from './config';
import { WorkerConsumer } from './refresh-worker.module';

/** The Kafka consumer, as a NestJS transport under the worker's @EventPattern handlers. */
export function connectConsumer(
  app: INestApplication,
  config: RefreshWorkerConfig,
  logger: Logger,
): void {
  const server = new KafkaEventsServer({
    kafka: app.get(KAFKA),
    publisher: app.get(EventPublisher),
    topicPrefix: config.kafka.topicPrefix,
    groupId: config.groupId,
    sessionTimeoutMs: config.sessionTimeoutMs,
    maxInFlight: config.refresh.maxInFlight,
    shutdownGraceMs: config.refresh.shutdownGraceMs,
    logger: logger.child({ component: 'consumer' }),
    registry: app.get(METRICS_REGISTRY),
  });
  app.get(WorkerConsumer).attach(server);
  app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
}
