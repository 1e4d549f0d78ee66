import { listenHttpApp, type Logger } from '@cashflow/observability';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { WebhookIngressConfig } from './config';
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
  const { requestTimeoutMs } = config.webhook;
  let publicApp;
  try {
    publicApp = await listenHttpApp({
      module: PublicWebhookModule.forRoot(
        config,
        admin.get(WebhookService),
        admin.get(WebhookMetrics),
      ),
      logger,
      ...config.publicHttp,
      bodyParser: false,
      configure: (app) => {
        app.setGlobalPrefix(config.webhook.path);
        // Tell the internet nothing about what answers.
        (app as NestExpressApplication).disable('x-powered-by').disable('etag');
      },
      httpServerOptions: {
        // A request (headers and body) not received by then is answered 408 and closed; checked
        // every second, so slow clients cannot hold sockets for long.
        requestTimeout: requestTimeoutMs,
        headersTimeout: requestTimeoutMs,
        connectionsCheckingInterval: 1000,
        keepAliveTimeout: 5000,
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
