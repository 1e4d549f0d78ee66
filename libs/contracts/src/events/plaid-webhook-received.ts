import { z } from 'zod';
import { WebhookDelivery } from './common';

export const PlaidWebhookReceivedData = z
  .object({ ...WebhookDelivery })
  .meta({ title: 'PlaidWebhookReceived v1 data' })
  .describe(
    'A verified Plaid webhook for an Item whose webhook_code is not CASHFLOW_REPORT_READY, kept for other consumers as Plaid sent it.',
  );
export type PlaidWebhookReceivedData = z.infer<typeof PlaidWebhookReceivedData>;
