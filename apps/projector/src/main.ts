import { createLogger, startApp } from '@cashflow/observability';
import { SERVICE, loadProjectorConfig } from './config';
import { startProjector } from './start-projector';

startApp(SERVICE, async () => {
  const config = loadProjectorConfig();
  const logger = createLogger({ service: SERVICE, level: config.logLevel });
  const app = await startProjector(config, logger);
  logger.info(config.http, `${SERVICE} started`);
  return app;
});
