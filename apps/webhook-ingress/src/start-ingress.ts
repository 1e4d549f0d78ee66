import { listenHttpApp, type Logger } from '@cashflow/observability';
import type { WebhookIngressConfig } from './config';
import { publicWebhookAdapter } from './http/public-server';
import { PublicErrorFilter } from './http/public-error.filter';
import { PublicWebhookModule, WebhookIngressModule } from './webhook-ingress.module';
import { WebhookMetrics } from './webhooks/webhook-metrics';
import { WebhookService } from './webhooks/webhook.service';

/**
 * Starts the ingress as two NestJS apps in one process: the admin app (health, metrics, and the
 * core providers) and the public app, which serves only `POST <WEBHOOK_PATH>` on its own port.
 */
export async function startWebhookIngress(config: WebhookIngressConfig, logger: Logger) {
  const admin = await listenHttpApp({
    module: WebhookIngressModule.forRoot(config, logger),
    logger,
    ...config.adminHttp,
  });
  let publicApp;
  try {
    const metrics = admin.get(WebhookMetrics);
    publicApp = await listenHttpApp({
      module: PublicWebhookModule.forRoot(config, admin.get(WebhookService)),
      logger,
      ...config.publicHttp,
      adapter: publicWebhookAdapter(config, metrics),
      bodyParser: false,
      configure: (app) => {
        app.setGlobalPrefix(config.webhook.path);
        app.useGlobalFilters(new PublicErrorFilter(metrics, config.webhook.maxBodyBytes, logger));
      },
    });
  } catch (error) {
    await admin.close();
    throw error;
  }
  const started = publicApp;
  return {
    admin,
    publicApp: started,
    async close(): Promise<void> {
      // Stop taking webhooks first; then Kafka, once what is in hand has been answered.
      await started.close();
      await admin.close();
    },
  };
}
