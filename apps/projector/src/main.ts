import { createLogger, listenHttpApp, startApp } from '@cashflow/observability';
import { SERVICE, loadProjectorConfig } from './config';
import { ProjectorModule } from './projector.module';

startApp(SERVICE, async () => {
  const config = loadProjectorConfig();
  const logger = createLogger({ service: SERVICE, level: config.logLevel });
  const app = await listenHttpApp({
    module: ProjectorModule.forRoot(config, logger),
    logger,
    ...config.http,
  });
  logger.info(config.http, `${SERVICE} started`);
  return app;
});
