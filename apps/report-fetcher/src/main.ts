import { createLogger, startApp } from '@cashflow/observability';
import { SERVICE, loadReportFetcherConfig } from './config';
import { startReportFetcher } from './start-report-fetcher';

startApp(SERVICE, async () => {
  const config = loadReportFetcherConfig();
  const logger = createLogger({ service: SERVICE, level: config.logLevel });
  const app = await startReportFetcher(config, logger);
  logger.info(
    { ...config.http, plaid: config.plaid.baseUrl, group: config.groupId },
    `${SERVICE} started`,
  );
  return app;
});
