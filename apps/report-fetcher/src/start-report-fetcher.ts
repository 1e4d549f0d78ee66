import { connectConsumer } from '@cashflow/kafka';
import { listenHttpApp, type Logger } from '@cashflow/observability';
import type { INestApplication } from '@nestjs/common';
import type { ReportFetcherConfig } from './config';
import { FetcherConsumer, ReportFetcherModule } from './report-fetcher.module';

/**
 * The report fetcher, built and started from its configuration: the HTTP app (health, metrics)
 * listening and the Kafka consumer running. `app.close()` stops it gracefully. Used by main.ts,
 * the tests and the benchmarks alike.
 */
export async function startReportFetcher(
  config: ReportFetcherConfig,
  logger: Logger,
): Promise<INestApplication> {
  const app = await listenHttpApp({
    module: ReportFetcherModule.forRoot(config, logger),
    logger,
    ...config.http,
    configure: (a) =>
      connectConsumer(
        a,
        config,
        {
          maxInFlight: 64,
          shutdownGraceMs: config.fetch.shutdownGraceMs,
          readiness: FetcherConsumer,
        },
        logger,
      ),
  });
  await app.startAllMicroservices();
  return app;
}
