import { createLogger, listenHttpApp, startApp } from '@cashflow/observability';
import { SERVICE, loadPlaidSandboxConfig } from './config';
import { configureSandboxApp } from './configure-app';
import { PlaidSandboxModule } from './plaid-sandbox.module';

startApp(SERVICE, async () => {
  const config = loadPlaidSandboxConfig();
  const logger = createLogger({ service: SERVICE, level: config.logLevel });
  const app = await listenHttpApp({
    module: PlaidSandboxModule.forRoot(config, logger),
    logger,
    ...config.http,
    bodyParser: false,
    configure: configureSandboxApp,
  });
  logger.info({ ...config.http, timeScale: config.timeScale }, `${SERVICE} started`);
  return app;
});
