import { connectConsumer } from '@cashflow/kafka';
import type { Logger } from '@cashflow/observability';
import { listenHttpApp } from '@cashflow/observability';
import type { INestApplication } from '@nestjs/common';
import type { RefreshWorkerConfig } from './config';
import { WorkerConsumer, RefreshWorkerModule } from './refresh-worker.module';

/**
 * The refresh worker, built and started from its configuration: the HTTP app (health, metrics,
 * the access-token API) listening, and the Kafka consumer running. `app.close()` stops it
 * gracefully. Used by main.ts, the tests and the benchmarks alike.
 */
export async function startRefreshWorker(
  config: RefreshWorkerConfig,
  logger: Logger,
): Promise<INestApplication> {
  const app = await listenHttpApp({
    module: RefreshWorkerModule.forRoot(config, logger),
    logger,
    ...config.http,
    configure: (a) =>
      connectConsumer(
        a,
        config,
        {
          maxInFlight: config.refresh.maxInFlight,
          shutdownGraceMs: config.refresh.shutdownGraceMs,
          readiness: WorkerConsumer,
        },
        logger,
      ),
  });
  await app.startAllMicroservices();
  return app;
}
