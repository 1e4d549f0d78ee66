import { z } from 'zod';
import { ItemId, Timestamp } from './common';

/**
 * An Item's health as the refresh worker keeps it: whether it can be refreshed without its user.
 * `healthy`; `consent_expiring` (PENDING_EXPIRATION / PENDING_DISCONNECT: refreshes still go to
 * Plaid); `needs_user_action` (an error only the user can clear, e.g. ITEM_LOGIN_REQUIRED:
 * refreshes are refused without a Plaid call); `revoked` (the user withdrew consent: refused too).
 */
export const ItemHealthStatus = z.enum([
  'healthy',
  'consent_expiring',
  'needs_user_action',
  'revoked',
]);
export type ItemHealthStatus = z.infer<typeof ItemHealthStatus>;

export const ItemHealthState = z
  .object({
    status: ItemHealthStatus,
    reason: z
      .string()
      .nullable()
      .describe(
        'Why: the Plaid error code (needs_user_action), the webhook code (revoked); null otherwise.',
      ),
    consent_expires_at: Timestamp.nullable().describe(
      'When access ends (consent_expiring: consent_expiration_time or disconnect_time); null otherwise.',
    ),
  })
  .describe("An Item's health.");
export type ItemHealthState = z.infer<typeof ItemHealthState>;

/** What changed an Item's health. */
export const HealthCause = z
  .object({
    kind: z
      .enum([
        'item_webhook',
        'refresh_failed',
        'report_failed',
        'refresh_accepted',
        'token_registered',
      ])
      .describe(
        "A verified Item webhook, a refresh Plaid refused or accepted, a report Plaid failed (ReportFailed), or the Item's access token registered again.",
      ),
    code: z
      .string()
      .nullable()
      .describe(
        'The webhook_code (item_webhook) or the Plaid error_code (refresh_failed, report_failed, and an ERROR webhook: its error code); null otherwise.',
      ),
    event_id: z
      .string()
      .nullable()
      .describe(
        'Id of the event that carried it (PlaidWebhookReceived, RefreshAccepted / RefreshFailed); null for a token registered.',
      ),
  })
  .describe("What changed the Item's health.");
export type HealthCause = z.infer<typeof HealthCause>;

/** The n-th health change of an Item. */
export const HealthSequence = z
  .number()
  .int()
  .min(1)
  .describe(
    "The Item's n-th health change (1, 2, ...): the one with the highest number is the Item's health now, whatever order the events are read in.",
  );

const HealthChange = {
  item_id: ItemId,
  sequence: HealthSequence,
  previous: ItemHealthState.describe('The health before this change.'),
  cause: HealthCause,
  changed_at: Timestamp.describe(
    'When the fact behind the change happened (webhook received, refresh answered, token registered).',
  ),
  decided_at: Timestamp.describe(
    'When the refresh worker made the change (refusals from then on rest on it).',
  ),
};

export const ItemNeedsAttentionData = z
  .object({
    ...HealthChange,
    health: ItemHealthState.describe('The health now (anything but healthy).'),
  })
  .meta({ title: 'ItemNeedsAttention v1 data' })
  .describe(
    "The Item's health turned bad, or its reason or date changed: its user must act (needs_user_action, revoked; refreshes are refused without a Plaid call until then) or soon will (consent_expiring). Published once per change.",
  );
export type ItemNeedsAttentionData = z.infer<typeof ItemNeedsAttentionData>;

export const ItemHealthRestoredData = z
  .object({ ...HealthChange })
  .meta({ title: 'ItemHealthRestored v1 data' })
  .describe(
    'The Item is healthy again (LOGIN_REPAIRED, a refresh Plaid accepted, or its access token registered again): refreshes go to Plaid. Published once per change.',
  );
export type ItemHealthRestoredData = z.infer<typeof ItemHealthRestoredData>;

/** The health a refresh was refused for, and the change that gave it. */
export const RefusedFor = ItemHealthState.extend({ sequence: HealthSequence }).describe(
  "The Item's health the refusal rested on, and the sequence of the ItemNeedsAttention that gave it.",
);
export type RefusedFor = z.infer<typeof RefusedFor>;
