/**
 * What the Item health decider (item-health.ts) reads and writes, as events: the facts in
 * PlaidWebhookReceived (Item webhooks) and in the worker's own RefreshAccepted / RefreshFailed,
 * and the ItemNeedsAttention / ItemHealthRestored a change is published as. Pure.
 */
import {
  INGRESS_SOURCE,
  PlaidError,
  WORKER_SOURCE,
  createEvent,
  type HealthCause,
  type ItemHealthRestored,
  type ItemHealthState,
  type ItemNeedsAttention,
  type PlaidWebhookReceived,
  type RefreshAccepted,
  type RefreshFailed,
  type ReportFailed,
} from '@cashflow/contracts';
import { randomUUID } from 'node:crypto';
import type { Health, HealthChange, HealthFact } from './item-health';

/** A fact about one Item, with what carried it. */
export interface ItemFact {
  readonly itemId: string;
  readonly fact: HealthFact;
  readonly cause: HealthCause;
}

/**
 * The fact in a verified Plaid webhook, or null for one that is not about the Item's health
 * (another webhook_type). The webhook's own fields are read leniently: Plaid adds fields, and a
 * date that does not parse is no date.
 */
export function webhookFact(event: PlaidWebhookReceived): ItemFact | null {
  const { data } = event;
  if (data.webhook_type !== 'ITEM') return null;
  const body = data.webhook;
  const parsedError = PlaidError.safeParse(body.error);
  const error = parsedError.success
    ? { error_type: parsedError.data.error_type, error_code: parsedError.data.error_code }
    : null;
  const until = dateField(body.consent_expiration_time) ?? dateField(body.disconnect_time);
  return {
    itemId: data.item_id,
    fact: { kind: 'item_webhook', code: data.webhook_code, error, until, at: data.received_at },
    cause: {
      kind: 'item_webhook',
      code: error ? error.error_code : data.webhook_code,
      event_id: event.metadata.id,
    },
  };
}

/**
 * The fact in one of the worker's own outcomes: Plaid accepted a refresh, or refused it with an
 * error of its own. Failures the worker named (a time-out, a request refused for the Item's
 * health, with no Plaid answer behind it) are no fact about the Item: null.
 */
export function outcomeFact(event: RefreshAccepted | RefreshFailed): ItemFact | null {
  if (event.metadata.source !== WORKER_SOURCE) return null;
  if (event.type === 'RefreshAccepted') {
    return {
      itemId: event.data.item_id,
      fact: { kind: 'refresh_accepted', at: event.data.accepted_at },
      cause: { kind: 'refresh_accepted', code: null, event_id: event.metadata.id },
    };
  }
  const { error } = event.data;
  if (error.source !== 'plaid') return null;
  return {
    itemId: event.data.item_id,
    fact: {
      kind: 'refresh_failed',
      error: { error_type: error.error_type, error_code: error.error_code },
      at: event.data.failed_at,
    },
    cause: { kind: 'refresh_failed', code: error.error_code, event_id: event.metadata.id },
  };
}

/**
 * The fact in a ReportFailed: Plaid accepted the refresh but failed its report, e.g. with
 * ITEM_LOGIN_REQUIRED (an error the user must clear; others change nothing). Only the
 * ingress's: a report from a verified webhook.
 */
export function reportFact(event: ReportFailed): ItemFact | null {
  if (event.metadata.source !== INGRESS_SOURCE) return null;
  const { error } = event.data;
  return {
    itemId: event.data.item_id,
    fact: {
      kind: 'report_failed',
      error: { error_type: error.error_type, error_code: error.error_code },
      at: event.data.received_at,
    },
    cause: { kind: 'report_failed', code: error.error_code, event_id: event.metadata.id },
  };
}

/** The Item's access token was registered again with another token: the user re-linked it. */
export function tokenFact(itemId: string, at: Date): ItemFact {
  return {
    itemId,
    fact: { kind: 'token_registered', at: at.toISOString() },
    cause: { kind: 'token_registered', code: null, event_id: null },
  };
}

/** A health as events carry it. */
export function healthState(health: Health): ItemHealthState {
  switch (health.status) {
    case 'healthy':
      return { status: 'healthy', reason: null, consent_expires_at: null };
    case 'consent_expiring':
      return { status: health.status, reason: null, consent_expires_at: health.expiresAt };
    case 'needs_user_action':
    case 'revoked':
      return { status: health.status, reason: health.reason, consent_expires_at: null };
  }
}

/**
 * The event publishing the Item's `sequence`-th change, from `before` to `after`, caused by
 * `fact`, decided at `decidedAt`.
 */
export function changeEvent(
  change: HealthChange,
  fact: ItemFact,
  before: Health,
  after: Health,
  sequence: number,
  decidedAt: Date,
): ItemNeedsAttention | ItemHealthRestored {
  const metadata = {
    id: randomUUID(),
    source: WORKER_SOURCE,
    time: decidedAt.toISOString(),
    ...(fact.cause.event_id ? { causationId: fact.cause.event_id } : {}),
  };
  const common = {
    item_id: fact.itemId,
    sequence,
    previous: healthState(before),
    cause: fact.cause,
    changed_at: new Date(fact.fact.at).toISOString(),
    decided_at: decidedAt.toISOString(),
  };
  return change === 'needs_attention'
    ? createEvent('ItemNeedsAttention', { ...common, health: healthState(after) }, metadata)
    : createEvent('ItemHealthRestored', common, metadata);
}

function dateField(value: unknown): string | null {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) return null;
  return value;
}
