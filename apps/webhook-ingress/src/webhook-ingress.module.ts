import { topicName } from '@cashflow/contracts';
import { KafkaReadiness, assertTopicsExist } from '@cashflow/kafka';
import { METRICS_REGISTRY, ObservabilityModule, type Logger } from '@cashflow/observability';
import {
  Inject,
  Module,
  type DynamicModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { Registry } from 'prom-client';
import { SERVICE, type WebhookIngressConfig } from './config';
import { createWebhookPipeline, type WebhookPipeline } from './pipeline';
import { WebhookMetrics } from './webhooks/webhook-metrics';
import { WebhookService } from './webhooks/webhook.service';

const PIPELINE = Symbol('WEBHOOK_PIPELINE');
const CONFIG = Symbol('WEBHOOK_INGRESS_CONFIG');

/** Connects the publisher at start-up (failing it when Kafka or a topic is missing). */
class PipelineLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(PIPELINE) private readonly pipeline: WebhookPipeline,
    @Inject(CONFIG) private readonly config: WebhookIngressConfig,
    private readonly readiness: KafkaReadiness,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const prefix = this.config.kafka.topicPrefix;
    await assertTopicsExist(this.pipeline.kafka, [
      topicName('reportOutcomes', prefix),
      topicName('plaidWebhooks', prefix),
      topicName('deadLetter', prefix),
    ]);
    await this.pipeline.publisher.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([this.pipeline.publisher.disconnect(), this.readiness.close()]);
  }
}

/**
 * The ingress's core and admin side (health and metrics). The public webhook path is served by
 * the public server (http/public-server.ts) on its own port, with this module's WebhookService.
 * Global, so the observability module's readiness check can see KafkaReadiness.
 */
@Module({})
export class WebhookIngressModule {
  static forRoot(config: WebhookIngressConfig, logger: Logger): DynamicModule {
    return {
      module: WebhookIngressModule,
      global: true,
      imports: [
        ObservabilityModule.forRoot({ service: SERVICE, logger, readiness: [KafkaReadiness] }),
      ],
      providers: [
        { provide: CONFIG, useValue: config },
        {
          provide: PIPELINE,
          useFactory: (registry: Registry) => createWebhookPipeline(config, logger, registry),
          inject: [METRICS_REGISTRY],
        },
        {
          provide: KafkaReadiness,
          useFactory: (pipeline: WebhookPipeline) => new KafkaReadiness(pipeline.kafka),
          inject: [PIPELINE],
        },
        {
          provide: WebhookService,
          useFactory: (pipeline: WebhookPipeline) => pipeline.service,
          inject: [PIPELINE],
        },
        {
          provide: WebhookMetrics,
          useFactory: (pipeline: WebhookPipeline) => pipeline.metrics,
          inject: [PIPELINE],
        },
        PipelineLifecycle,
      ],
      exports: [KafkaReadiness, WebhookService, WebhookMetrics],
    };
  }
}
