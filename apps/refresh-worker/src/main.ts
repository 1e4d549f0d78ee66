import { createLogger, startApp } from '@cashflow/observability';
import { SERVICE, loadRefreshWorkerConfig } from './config';
import { startRefreshWorker } from './start-refresh-worker';

startApp(SERVICE, async () => {
  const config = loadRefreshWorkerConfig();
  const logger = createLogger({ service: SERVICE, level: config.logLevel });
  const app = await startRefreshWorker(config, logger);
  logger.info(
    { ...config.http, plaid: config.plaid.baseUrl, group: config.groupId },
    `${SERVICE} started`,
  );
  return app;
});
