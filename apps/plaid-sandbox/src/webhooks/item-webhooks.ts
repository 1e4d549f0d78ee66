import { z } from 'zod';
import { PLAID_ERROR_CODES, type PlaidErrorCode } from '../plaid-api/plaid-errors';

/** Plaid's Item error codes an ERROR webhook can carry in the sandbox. */
const ITEM_ERROR_CODES = PLAID_ERROR_CODES as [PlaidErrorCode, ...PlaidErrorCode[]];

const inAWeek = () => new Date(Date.now() + 7 * 24 * 3600_000).toISOString();

/**
 * POST /sandbox/items/{item_id}/item_webhook: which Item webhook to fire, with the fields its
 * code needs (defaults: ITEM_LOGIN_REQUIRED; a time a week from now; INSTITUTION_MIGRATION).
 */
export const ItemWebhookRequest = z.discriminatedUnion('webhook_code', [
  z.strictObject({
    webhook_code: z.literal('ERROR'),
    error_code: z.enum(ITEM_ERROR_CODES).default('ITEM_LOGIN_REQUIRED'),
  }),
  z.strictObject({
    webhook_code: z.literal('PENDING_EXPIRATION'),
    at: z.iso.datetime({ offset: true }).default(inAWeek),
  }),
  z.strictObject({
    webhook_code: z.literal('PENDING_DISCONNECT'),
    reason: z
      .enum(['INSTITUTION_MIGRATION', 'INSTITUTION_TOKEN_EXPIRATION'])
      .default('INSTITUTION_MIGRATION'),
    at: z.iso.datetime({ offset: true }).default(inAWeek),
  }),
  z.strictObject({ webhook_code: z.literal('USER_PERMISSION_REVOKED') }),
  z.strictObject({ webhook_code: z.literal('USER_ACCOUNT_REVOKED') }),
  z.strictObject({ webhook_code: z.literal('LOGIN_REPAIRED') }),
  z.strictObject({ webhook_code: z.literal('NEW_ACCOUNTS_AVAILABLE') }),
  z.strictObject({ webhook_code: z.literal('WEBHOOK_UPDATE_ACKNOWLEDGED') }),
]);
export type ItemWebhookRequest = z.output<typeof ItemWebhookRequest>;

/** The Item webhook codes the sandbox fires, in the order Plaid documents them. */
export const ITEM_WEBHOOK_CODES = ItemWebhookRequest.options.map((o) => o.shape.webhook_code.value);
