import { topicName } from '@cashflow/contracts';
import { KafkaReadiness, assertTopicsExist, createKafka } from '@cashflow/kafka';
import {
  LOGGER,
  METRICS_REGISTRY,
  ObservabilityModule,
  type Logger,
} from '@cashflow/observability';
import { PlaidClient } from '@cashflow/plaid-client';
import {
  Inject,
  Module,
  type DynamicModule,
  type MiddlewareConsumer,
  type NestModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import { SERVICE, type WebhookIngressConfig } from './config';
import { RawBodyMiddleware } from './http/raw-body.middleware';
import { WebhookController } from './http/webhook.controller';
import { DurablePublisher } from './publishing/durable-publisher';
import { PlaidKeyFetcher } from './verification/plaid-key-fetcher';
import { VerificationKeys, type KeyFetcher } from './verification/verification-keys';
import { WebhookVerifier } from './verification/webhook-verifier';
import { DeliveryLedger } from './webhooks/delivery-ledger';
import { WebhookMetrics } from './webhooks/webhook-metrics';
import { WebhookService, type WebhookResponse } from './webhooks/webhook.service';

const INGRESS_KAFKA = Symbol('INGRESS_KAFKA');
const CONFIG = Symbol('WEBHOOK_INGRESS_CONFIG');

/** Deliveries remembered for replay detection: minutes of webhooks at hundreds per second. */
const LEDGER_CAPACITY = 200_000;
/** Webhooks waiting for Kafka beyond which new ones get 503 at once. */
const MAX_PENDING_RECORDS = 10_000;

/**
 * The ingress's Kafka client. Its retries are short on purpose: with the broker down a send must
 * fail (and the webhook be answered 503) well within Plaid's 10 s, rather than be answered 503 by
 * the time-out and then succeed in the background.
 */
function ingressKafka(config: WebhookIngressConfig, logger: Logger): Kafka {
  return createKafka(
    { ...config.kafka, logger },
    {
      connectionTimeout: 1000,
      requestTimeout: Math.min(5000, config.webhook.publishTimeoutMs),
      retry: { initialRetryTime: 200, maxRetryTime: 1000, retries: 3 },
    },
  );
}

/** Connects the publisher at start-up (failing it when Kafka or the topics are missing). */
class PublisherLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(INGRESS_KAFKA) private readonly kafka: Kafka,
    @Inject(CONFIG) private readonly config: WebhookIngressConfig,
    private readonly publisher: DurablePublisher,
    private readonly readiness: KafkaReadiness,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const prefix = this.config.kafka.topicPrefix;
    await assertTopicsExist(this.kafka, [
      topicName('reportOutcomes', prefix),
      topicName('plaidWebhooks', prefix),
      topicName('deadLetter', prefix),
    ]);
    await this.publisher.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([this.publisher.disconnect(), this.readiness.close()]);
  }
}

/** The ingress's Kafka client, its readiness check and the durable publisher, for every module. */
@Module({})
class IngressKafkaModule {
  static forRoot(config: WebhookIngressConfig, logger: Logger): DynamicModule {
    return {
      module: IngressKafkaModule,
      global: true,
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: INGRESS_KAFKA, useFactory: () => ingressKafka(config, logger) },
        {
          provide: KafkaReadiness,
          useFactory: (kafka: Kafka) => new KafkaReadiness(kafka),
          inject: [INGRESS_KAFKA],
        },
        {
          provide: DurablePublisher,
          useFactory: (kafka: Kafka) =>
            new DurablePublisher(kafka, config.kafka.topicPrefix, {
              timeoutMs: config.webhook.publishTimeoutMs,
              maxPending: MAX_PENDING_RECORDS,
            }),
          inject: [INGRESS_KAFKA],
        },
        PublisherLifecycle,
      ],
      exports: [KafkaReadiness, DurablePublisher],
    };
  }
}

/**
 * The ingress's core and admin side (health and metrics). The public webhook path is served by a
 * second app, PublicWebhookModule, on its own port; it shares this module's WebhookService.
 */
@Module({})
export class WebhookIngressModule {
  static forRoot(config: WebhookIngressConfig, logger: Logger): DynamicModule {
    return {
      module: WebhookIngressModule,
      imports: [
        IngressKafkaModule.forRoot(config, logger),
        ObservabilityModule.forRoot({ service: SERVICE, logger, readiness: [KafkaReadiness] }),
      ],
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: DeliveryLedger, useFactory: () => new DeliveryLedger(LEDGER_CAPACITY) },
        {
          provide: WebhookMetrics,
          useFactory: (registry: Registry, ledger: DeliveryLedger<WebhookResponse>) =>
            new WebhookMetrics(registry, () => ledger.size),
          inject: [METRICS_REGISTRY, DeliveryLedger],
        },
        {
          provide: WebhookVerifier,
          useFactory: (metrics: WebhookMetrics) => {
            const plaid = new PlaidClient({
              ...config.plaid,
              connectTimeoutMs: 2000,
              headersTimeoutMs: 4000,
              bodyTimeoutMs: 4000,
              connections: 4,
            });
            const fetcher = new PlaidKeyFetcher(plaid);
            const counted: KeyFetcher = {
              fetch: async (kid) => {
                const result = await fetcher.fetch(kid);
                metrics.keyFetch(result.kind);
                return result;
              },
            };
            const keys = new VerificationKeys(counted, {
              fetchesPerMinute: config.webhook.keyFetchesPerMinute,
              cacheTtlMs: config.webhook.keyCacheTtlMs,
            });
            return new WebhookVerifier(keys, { clockSkewMs: config.webhook.clockSkewMs });
          },
          inject: [WebhookMetrics],
        },
        {
          provide: WebhookService,
          useFactory: (
            verifier: WebhookVerifier,
            publisher: DurablePublisher,
            ledger: DeliveryLedger<WebhookResponse>,
            metrics: WebhookMetrics,
            log: Logger,
          ) =>
            new WebhookService(
              verifier,
              publisher,
              ledger,
              metrics,
              log.child({ component: 'webhooks' }),
              {
                path: config.webhook.path,
                clockSkewMs: config.webhook.clockSkewMs,
                deadLetterTopic: topicName('deadLetter', config.kafka.topicPrefix),
              },
            ),
          inject: [WebhookVerifier, DurablePublisher, DeliveryLedger, WebhookMetrics, LOGGER],
        },
      ],
      exports: [WebhookService, WebhookMetrics],
    };
  }
}

/** The public side: one path, `POST <WEBHOOK_PATH>`, and nothing else. */
@Module({})
export class PublicWebhookModule implements NestModule {
  constructor(
    @Inject(CONFIG) private readonly config: WebhookIngressConfig,
    private readonly metrics: WebhookMetrics,
  ) {}

  static forRoot(
    config: WebhookIngressConfig,
    service: WebhookService,
    metrics: WebhookMetrics,
  ): DynamicModule {
    return {
      module: PublicWebhookModule,
      controllers: [WebhookController],
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: WebhookService, useValue: service },
        { provide: WebhookMetrics, useValue: metrics },
      ],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    const guard = new RawBodyMiddleware(this.config.webhook.maxBodyBytes, this.metrics);
    consumer.apply(guard.use.bind(guard)).forRoutes(WebhookController);
  }
}
