import { createLogger, startApp } from '@cashflow/observability';
import { SERVICE, loadWebhookIngressConfig } from './config';
import { startWebhookIngress } from './start-ingress';

startApp(SERVICE, async () => {
  const config = loadWebhookIngressConfig();
  const logger = createLogger({ service: SERVICE, level: config.logLevel });
  const ingress = await startWebhookIngress(config, logger);
  logger.info(
    {
      webhooks: `http://${config.publicHttp.host}:${config.publicHttp.port}${config.webhook.path}`,
      admin: `http://${config.adminHttp.host}:${config.adminHttp.port}`,
    },
    `${SERVICE} started`,
  );
  return ingress;
});
