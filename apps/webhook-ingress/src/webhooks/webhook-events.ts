/**
 * What a verified webhook body becomes: a pure function, so every rule here is unit-tested
 * without HTTP or Kafka.
 *
 * Plaid publishes no schema for CASHFLOW_REPORT_READY. We key on `webhook_code` and `item_id`,
 * treat a non-null `error` as a failure, keep every field as Plaid sent it (in `webhook`), and do
 * not reject an unknown `webhook_type`.
 */
import {
  INGRESS_SOURCE,
  ItemId,
  PlaidError,
  createEvent,
  type PlaidWebhookReceived,
  type ReportFailed,
  type ReportReady,
} from '@cashflow/contracts';
import { v5 as uuidv5 } from 'uuid';

export const CASHFLOW_REPORT_READY = 'CASHFLOW_REPORT_READY';

/** Namespace for event ids derived from delivery ids (uuid v5). */
const EVENT_ID_NAMESPACE = '1d7b1f0e-3c52-4c8e-9a55-6f0f5a8b9e21';

export interface Delivery {
  /** SHA-256 (hex) of the verification JWT. */
  readonly deliveryId: string;
  readonly receivedAt: Date;
}

export type WebhookEvent = ReportReady | ReportFailed | PlaidWebhookReceived;

export type WebhookDecision =
  | { readonly kind: 'publish'; readonly event: WebhookEvent }
  /**
   * Verified, but not something an event can carry (no usable item_id outside a Cashflow
   * webhook): recorded in the dead-letter topic and acknowledged, so Plaid does not retry it.
   */
  | {
      readonly kind: 'record';
      readonly code: 'UNROUTABLE_WEBHOOK';
      readonly field: string;
      readonly message: string;
    }
  /** Signed by Plaid yet unusable: 400, and a dead-letter record so it is not lost. */
  | {
      readonly kind: 'invalid';
      readonly code: 'INVALID_JSON' | 'SCHEMA_VIOLATION';
      readonly field: string;
      readonly message: string;
    };

export function decideWebhook(rawBody: Buffer, delivery: Delivery): WebhookDecision {
  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString('utf8'));
  } catch {
    return invalid('INVALID_JSON', 'body', 'body: not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return invalid('SCHEMA_VIOLATION', 'body', 'body: must be a JSON object');
  }
  const webhook = body as Record<string, unknown>;
  const code = webhook.webhook_code;
  if (typeof code !== 'string' || code.length === 0) {
    return invalid('SCHEMA_VIOLATION', 'webhook_code', 'webhook_code: must be a non-empty string');
  }
  const type =
    typeof webhook.webhook_type === 'string' && webhook.webhook_type
      ? webhook.webhook_type
      : 'UNKNOWN';
  const itemId = ItemId.safeParse(webhook.item_id);
  const isReport = code === CASHFLOW_REPORT_READY;

  if (!itemId.success) {
    const message = `item_id: ${itemId.error.issues[0]?.message ?? 'invalid'}`;
    return isReport
      ? invalid('SCHEMA_VIOLATION', 'item_id', message)
      : { kind: 'record', code: 'UNROUTABLE_WEBHOOK', field: 'item_id', message };
  }

  const data = {
    item_id: itemId.data,
    webhook_type: type,
    webhook_code: code,
    environment: typeof webhook.environment === 'string' ? webhook.environment : null,
    received_at: delivery.receivedAt.toISOString(),
    delivery_id: delivery.deliveryId,
    webhook,
  };
  const metadata = {
    // The same delivery always yields the same event id, however often it is published.
    id: uuidv5(delivery.deliveryId, EVENT_ID_NAMESPACE),
    source: INGRESS_SOURCE,
    time: data.received_at,
  };

  if (!isReport) {
    return { kind: 'publish', event: createEvent('PlaidWebhookReceived', data, metadata) };
  }
  if (webhook.error === null || webhook.error === undefined) {
    return {
      kind: 'publish',
      event: createEvent('ReportReady', { ...data, found_by: 'webhook' }, metadata),
    };
  }
  const error = PlaidError.safeParse(webhook.error);
  if (!error.success) {
    const issue = error.error.issues[0];
    const field = ['error', ...(issue?.path ?? [])].join('.');
    return invalid('SCHEMA_VIOLATION', field, `${field}: ${issue?.message ?? 'not a Plaid error'}`);
  }
  return {
    kind: 'publish',
    event: createEvent('ReportFailed', { ...data, error: error.data }, metadata),
  };
}

function invalid(
  code: 'INVALID_JSON' | 'SCHEMA_VIOLATION',
  field: string,
  message: string,
): WebhookDecision {
  return { kind: 'invalid', code, field, message };
}
