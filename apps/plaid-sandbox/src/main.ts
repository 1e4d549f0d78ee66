import { createLogger, listenHttpApp, startApp } from '@cashflow/observability';
import { SERVICE, loadPlaidSandboxConfig } from './config';
import { PlaidSandboxModule } from './plaid-sandbox.module';

startApp(SERVICE, async () => {
  const config = loadPlaidSandboxConfig();
  const logger = createLogger({ service: SERVICE, level: config.logLevel });
  const app = await listenHttpApp({
    module: PlaidSandboxModule.forRoot(logger),
    logger,
    ...config.http,
  });
  logger.info(config.http, `${SERVICE} started`);
  return app;
});
