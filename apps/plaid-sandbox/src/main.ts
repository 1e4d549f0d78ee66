import { createLogger, startApp } from '@cashflow/observability';
import { SERVICE, loadPlaidSandboxConfig } from './config';
import { startPlaidSandbox } from './start-plaid-sandbox';

startApp(SERVICE, async () => {
  const config = loadPlaidSandboxConfig();
  const logger = createLogger({ service: SERVICE, level: config.logLevel });
  const app = await startPlaidSandbox(config, logger);
  logger.info({ ...config.http, timeScale: config.timeScale }, `${SERVICE} started`);
  return app;
});
