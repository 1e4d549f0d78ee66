import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** How a webhook request ended; the `outcome` label of webhook_requests_total. */
export type WebhookOutcome =
  | 'accepted'
  | 'recorded'
  | 'duplicate'
  | 'rejected'
  | 'invalid'
  | 'unavailable'
  | 'too_large'
  | 'unsupported_media_type'
  | 'method_not_allowed'
  /** Not the webhook path (404): not a webhook, so left out of the webhook alerts' ratios. */
  | 'not_found'
  /** A request that could not be read or parsed (400, or 431 for oversized headers). */
  | 'bad_request'
  /** Not received within WEBHOOK_REQUEST_TIMEOUT_MS (408). */
  | 'timeout';

/** What ops watch on the ingress. */
export class WebhookMetrics {
  private readonly requests: Counter<'outcome'>;
  private readonly rejections: Counter<'reason'>;
  private readonly published: Counter<'type'>;
  private readonly storeSeconds: Histogram;
  private readonly keyFetches: Counter<'result'>;

  constructor(registry: Registry, deliveriesRemembered: () => number) {
    this.requests = new Counter({
      name: 'webhook_requests_total',
      help: 'Requests to the public port by how they ended (accepted, duplicate, rejected, unavailable, not_found, ...).',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.rejections = new Counter({
      name: 'webhook_verification_failures_total',
      help: 'Webhooks refused with 401, by reason (bad_signature, stale_iat, unknown_key, ...).',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.published = new Counter({
      name: 'webhook_events_published_total',
      help: 'Events stored in Kafka from webhooks, by type (dead-letter records as DeadLetter).',
      labelNames: ['type'],
      registers: [registry],
    });
    // Counted from 0, so the first dead letter shows as an increase (an alert watches it).
    this.published.inc({ type: 'DeadLetter' }, 0);
    this.storeSeconds = new Histogram({
      name: 'webhook_store_seconds',
      help: 'Time from a verified webhook to Kafka acknowledging it (or giving up).',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.keyFetches = new Counter({
      name: 'webhook_key_fetches_total',
      help: 'Calls to /webhook_verification_key/get, by result (found, not_found, unavailable).',
      labelNames: ['result'],
      registers: [registry],
    });
    new Gauge({
      name: 'webhook_deliveries_remembered',
      help: 'Signed deliveries remembered to recognise a replay.',
      registers: [registry],
      collect() {
        this.set(deliveriesRemembered());
      },
    });
  }

  request(outcome: WebhookOutcome): void {
    this.requests.inc({ outcome });
  }

  rejected(reason: string): void {
    this.rejections.inc({ reason });
  }

  stored(type: string, seconds: number): void {
    this.published.inc({ type });
    this.storeSeconds.observe(seconds);
  }

  storeFailed(seconds: number): void {
    this.storeSeconds.observe(seconds);
  }

  keyFetch(result: string): void {
    this.keyFetches.inc({ result });
  }
}
