import { NotStoredError, traceFields, type EventPublisher } from '@cashflow/kafka';
import { inSpan, scrubSecrets, type Logger } from '@cashflow/observability';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { MAX_TOKEN_AGE_S, type WebhookVerifier } from '../verification/webhook-verifier';
import type { DeliveryLedger } from './delivery-ledger';
import { decideWebhook } from './webhook-events';
import type { WebhookMetrics, WebhookOutcome } from './webhook-metrics';

/** Who dead-lettered a webhook, in the record's `dlq_consumer` header. */
const DEAD_LETTER_CONSUMER = 'webhook-ingress';

/** An HTTP answer, independent of the framework that sends it. */
export interface WebhookResponse {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly outcome: WebhookOutcome;
}

export interface WebhookServiceOptions {
  /** The public path, recorded in dead-letter records as where the webhook arrived. */
  readonly path: string;
  readonly clockSkewMs: number;
  /** Seconds in the Retry-After header of a 503. */
  readonly retryAfterS?: number;
}

/**
 * The ingress's one job: verify a webhook, store what it says durably, and only then say 200.
 *
 *   401  the signature does not hold (nothing is published)
 *   200  stored: ReportReady / ReportFailed / PlaidWebhookReceived, or a verified webhook that
 *        no event can carry, recorded in the dead-letter topic
 *   400  signed by Plaid but unusable (bad JSON, no item_id): recorded in the dead-letter topic
 *   503  we could not store it or could not verify it now (Kafka or Plaid unavailable): Plaid
 *        retries. Never a 4xx for our own outage, never a 200 for something not stored.
 *
 * Framework-free, so the NestJS controller and the benchmark's bare node:http server share it.
 */
export class WebhookService {
  constructor(
    private readonly verifier: WebhookVerifier,
    private readonly publisher: EventPublisher,
    private readonly ledger: DeliveryLedger<WebhookResponse>,
    private readonly metrics: WebhookMetrics | undefined,
    private readonly logger: Logger,
    private readonly options: WebhookServiceOptions,
  ) {}

  /**
   * Answers one webhook in a server span that starts a trace of its own: Plaid's webhook names no
   * request, so the spans of the refreshes it completes are linked later, where a report is
   * matched to them (the projection's apply span).
   */
  receive(rawBody: Buffer, verification: string | undefined): Promise<WebhookResponse> {
    return inSpan(
      `POST ${this.options.path}`,
      {
        kind: SpanKind.SERVER,
        parent: ROOT_CONTEXT,
        attributes: { 'http.request.method': 'POST', 'http.route': this.options.path },
      },
      async (span) => {
        const response = await this.handle(rawBody, verification);
        this.metrics?.request(response.outcome);
        span.setAttributes({
          'http.response.status_code': response.status,
          'cashflow.webhook.outcome': response.outcome,
        });
        if (response.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        return response;
      },
    );
  }

  private async handle(
    rawBody: Buffer,
    verification: string | undefined,
  ): Promise<WebhookResponse> {
    const verified = await inSpan('verify webhook', {}, async (span) => {
      const result = await this.verifier.verify(rawBody, verification);
      span.setAttributes({
        'cashflow.verification.result': result.kind,
        ...(result.kind === 'verified'
          ? {}
          : { 'cashflow.verification.reason': scrubSecrets(result.reason) }),
      });
      return result;
    });
    if (verified.kind === 'rejected') {
      this.metrics?.rejected(verified.reason);
      this.logger.warn({ reason: verified.reason }, 'webhook refused: verification failed');
      return {
        status: 401,
        body: { error: 'unauthorized', reason: verified.reason },
        outcome: 'rejected',
      };
    }
    if (verified.kind === 'unavailable') {
      this.logger.warn({ reason: verified.reason }, 'webhook not verified now: key unavailable');
      return this.unavailable('verification key unavailable');
    }

    const expiresAt = (verified.issuedAt + MAX_TOKEN_AGE_S) * 1000 + this.options.clockSkewMs;
    const { result, duplicate } = await this.ledger.once(
      verified.deliveryId,
      expiresAt,
      () => this.store(rawBody, verified.deliveryId),
      (response) => response.status < 500,
    );
    if (duplicate && result.status < 500) {
      this.logger.info({ delivery_id: verified.deliveryId }, 'webhook delivery seen before');
      return { ...result, outcome: 'duplicate' };
    }
    return result;
  }

  private async store(rawBody: Buffer, deliveryId: string): Promise<WebhookResponse> {
    const decision = decideWebhook(rawBody, { deliveryId, receivedAt: new Date() });
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      if (decision.kind === 'publish') {
        // The event carries this webhook's trace, so its consumers' spans join it.
        const event = {
          ...decision.event,
          metadata: { ...decision.event.metadata, ...traceFields() },
        };
        await this.publisher.publish(event);
        this.metrics?.stored(decision.event.type, seconds());
        this.logger.info(
          {
            delivery_id: deliveryId,
            item_id: decision.event.data.item_id,
            type: decision.event.type,
          },
          'webhook stored',
        );
        return {
          status: 200,
          body: { status: 'accepted', event_id: decision.event.metadata.id },
          outcome: 'accepted',
        };
      }
      // The raw body byte for byte, with the reason in dlq_* headers (never the JWT).
      await this.publisher.deadLetter(
        {
          key: null,
          value: rawBody,
          headers: { 'content-type': 'application/json', webhook_delivery_id: deliveryId },
        },
        decision,
        { route: `POST ${this.options.path}` },
        DEAD_LETTER_CONSUMER,
      );
      this.metrics?.stored('DeadLetter', seconds());
      this.logger.warn(
        { delivery_id: deliveryId, code: decision.code, field: decision.field },
        `verified webhook dead-lettered: ${decision.message}`,
      );
      return decision.kind === 'record'
        ? {
            status: 200,
            body: { status: 'recorded', reason: decision.message },
            outcome: 'recorded',
          }
        : {
            status: 400,
            body: { error: 'invalid webhook', reason: decision.message },
            outcome: 'invalid',
          };
    } catch (error) {
      if (!(error instanceof NotStoredError)) throw error;
      this.metrics?.storeFailed(seconds());
      this.logger.warn(
        { delivery_id: deliveryId, kind: error.kind, err: error },
        'webhook not stored',
      );
      return this.unavailable('could not store the webhook');
    }
  }

  private unavailable(reason: string): WebhookResponse {
    return {
      status: 503,
      body: { error: 'unavailable', reason },
      headers: { 'retry-after': String(this.options.retryAfterS ?? 30) },
      outcome: 'unavailable',
    };
  }
}
