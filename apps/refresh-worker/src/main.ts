import { createLogger, listenHttpApp, startApp } from '@cashflow/observability';
import { SERVICE, loadRefreshWorkerConfig } from './config';
import { connectConsumer } from './consumer';
import { RefreshWorkerModule } from './refresh-worker.module';

startApp(SERVICE, async () => {
  const config = loadRefreshWorkerConfig();
  const logger = createLogger({ service: SERVICE, level: config.logLevel });
  const app = await listenHttpApp({
    module: RefreshWorkerModule.forRoot(config, logger),
    logger,
    ...config.http,
    configure: (a) => connectConsumer(a, config, logger),
  });
  await app.startAllMicroservices();
  logger.info(
    { ...config.http, plaid: config.plaid.baseUrl, group: config.groupId },
    `${SERVICE} started`,
  );
  return app;
});
