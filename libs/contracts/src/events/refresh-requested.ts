import { z } from 'zod';
import { ItemId } from './common';

export const RefreshRequestedData = z
  .object({
    item_id: ItemId,
    days_requested: z
      .number()
      .optional()
      .describe(
        'Days of history to refresh, an integer from 1 to 730; 365 when absent. Any other number is answered with RefreshFailed (INVALID_DAYS_REQUESTED) without calling Plaid.',
      ),
    requested_by: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe('Free text naming the upstream service or person asking, for ops.'),
    force: z
      .boolean()
      .optional()
      .describe(
        'Call Plaid even when the Item is known to need its user (needs_user_action or revoked), which is otherwise refused at once without a Plaid call; false when absent. A call Plaid accepts makes the Item healthy again.',
      ),
  })
  .meta({ title: 'RefreshRequested v1 data' })
  .describe('Asks for a fresh Cashflow Report for one Item.');
export type RefreshRequestedData = z.infer<typeof RefreshRequestedData>;

export const DEFAULT_DAYS_REQUESTED = 365;
