import { KafkaModule, KafkaReadiness } from '@cashflow/kafka';
import { ObservabilityModule, type Logger } from '@cashflow/observability';
import { Module, type DynamicModule } from '@nestjs/common';
import { SERVICE, type WebhookIngressConfig } from './config';

/**
 * The webhook ingress's admin side: health and metrics, on a port apart from the public webhook
 * path. Verified Plaid webhooks become ReportReady / ReportFailed events.
 */
@Module({})
export class WebhookIngressModule {
  static forRoot(config: WebhookIngressConfig, logger: Logger): DynamicModule {
    return {
      module: WebhookIngressModule,
      imports: [
        KafkaModule.forRoot({ ...config.kafka, logger }),
        ObservabilityModule.forRoot({ service: SERVICE, logger, readiness: [KafkaReadiness] }),
      ],
    };
  }
}
