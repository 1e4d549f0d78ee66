import { EventPublisher, createKafka } from '@cashflow/kafka';
import type { Logger } from '@cashflow/observability';
import { PlaidClient } from '@cashflow/plaid-client';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { WebhookIngressConfig } from './config';
import { PlaidKeyFetcher } from './verification/plaid-key-fetcher';
import { VerificationKeys, type KeyFetcher } from './verification/verification-keys';
import { WebhookVerifier } from './verification/webhook-verifier';
import { DeliveryLedger } from './webhooks/delivery-ledger';
import { WebhookMetrics } from './webhooks/webhook-metrics';
import { WebhookService, type WebhookResponse } from './webhooks/webhook.service';

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

/**
 * Everything between a webhook's bytes and Kafka, built from configuration: verification (keys
 * from the configured Plaid), the replay ledger, the event publisher and the service tying
 * them together. The NestJS module provides these; the benchmark's bare node:http server uses
 * the same pipeline.
 */
export function createWebhookPipeline(
  config: WebhookIngressConfig,
  logger: Logger,
  registry?: Registry,
) {
  const kafka = ingressKafka(config, logger);
  const publisher = new EventPublisher(kafka, config.kafka.topicPrefix, {
    timeoutMs: config.webhook.publishTimeoutMs,
    maxPending: MAX_PENDING_RECORDS,
  });
  const ledger = new DeliveryLedger<WebhookResponse>(LEDGER_CAPACITY);
  const metrics = registry ? new WebhookMetrics(registry, () => ledger.size) : undefined;

  const plaid = new PlaidClient({
    ...config.plaid,
    // Key fetches happen inside Plaid's 10 s answer window.
    connectTimeoutMs: 2000,
    headersTimeoutMs: 4000,
    bodyTimeoutMs: 4000,
    connections: 4,
  });
  const plaidKeys = new PlaidKeyFetcher(plaid);
  const counted: KeyFetcher = {
    fetch: async (kid) => {
      const result = await plaidKeys.fetch(kid);
      metrics?.keyFetch(result.kind);
      return result;
    },
  };
  const keys = new VerificationKeys(counted, {
    fetchesPerMinute: config.webhook.keyFetchesPerMinute,
    cacheTtlMs: config.webhook.keyCacheTtlMs,
  });
  const verifier = new WebhookVerifier(keys, { clockSkewMs: config.webhook.clockSkewMs });

  const service = new WebhookService(
    verifier,
    publisher,
    ledger,
    metrics,
    logger.child({ component: 'webhooks' }),
    {
      path: config.webhook.path,
      clockSkewMs: config.webhook.clockSkewMs,
    },
  );
  return { kafka, publisher, metrics, service };
}
export type WebhookPipeline = ReturnType<typeof createWebhookPipeline>;
