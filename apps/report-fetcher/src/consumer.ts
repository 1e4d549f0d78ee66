import { EventPublisher, KAFKA, KafkaEventsServer } from '@cashflow/kafka';
import { METRICS_REGISTRY, type Logger } from '@cashflow/observability';
import type { INestApplication } from '@nestjs/common';
import type { ReportFetcherConfig } from './config';
import { FetcherConsumer } from './report-fetcher.module';

/** The Kafka consumer (its own group), as a NestJS transport under the fetcher's handlers. */
export function connectConsumer(
  app: INestApplication,
  config: ReportFetcherConfig,
  logger: Logger,
): void {
  const server = new KafkaEventsServer({
    kafka: app.get(KAFKA),
    publisher: app.get(EventPublisher),
    topicPrefix: config.kafka.topicPrefix,
    groupId: config.groupId,
    sessionTimeoutMs: config.sessionTimeoutMs,
    maxInFlight: 64,
    shutdownGraceMs: config.fetch.shutdownGraceMs,
    logger: logger.child({ component: 'consumer' }),
    registry: app.get(METRICS_REGISTRY),
  });
  app.get(FetcherConsumer).attach(server);
  app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
}
