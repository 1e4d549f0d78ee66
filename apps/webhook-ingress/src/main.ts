import { createLogger, listenHttpApp, startApp } from '@cashflow/observability';
import { SERVICE, loadWebhookIngressConfig } from './config';
import { WebhookIngressModule } from './webhook-ingress.module';

startApp(SERVICE, async () => {
  const config = loadWebhookIngressConfig();
  const logger = createLogger({ service: SERVICE, level: config.logLevel });
  const app = await listenHttpApp({
    module: WebhookIngressModule.forRoot(config, logger),
    logger,
    ...config.adminHttp,
  });
  logger.info({ admin: config.adminHttp }, `${SERVICE} started`);
  return app;
});
