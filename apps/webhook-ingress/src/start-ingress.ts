import { listenHttpApp, type Logger } from '@cashflow/observability';
import type { WebhookIngressConfig } from './config';
import { createPublicServer } from './http/public-server';
import { WebhookIngressModule } from './webhook-ingress.module';
import { WebhookMetrics } from './webhooks/webhook-metrics';
import { WebhookService } from './webhooks/webhook.service';

/**
 * Starts the ingress: the NestJS app (health, metrics, and the providers: verification, the
 * replay ledger, Kafka) on the admin port, and the public server, which serves only
 * `POST <WEBHOOK_PATH>` on its own port with the app's WebhookService (see public-server.ts).
 */
export async function startWebhookIngress(config: WebhookIngressConfig, logger: Logger) {
  const admin = await listenHttpApp({
    module: WebhookIngressModule.forRoot(config, logger),
    logger,
    ...config.adminHttp,
  });
  const publicServer = createPublicServer(
    config,
    admin.get(WebhookService),
    admin.get(WebhookMetrics),
    logger.child({ component: 'public-server' }),
  );
  try {
    await publicServer.listen();
  } catch (error) {
    await admin.close();
    throw error;
  }
  return {
    admin,
    publicServer,
    async close(): Promise<void> {
      // Stop taking webhooks first; then Kafka, once what is in hand has been answered.
      await publicServer.close();
      await admin.close();
    },
  };
}
