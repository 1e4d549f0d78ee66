import { z } from 'zod';
import { Attempts, DaysRequested, EventId, ItemId, Timestamp } from './common';

export const RefreshAcceptedData = z
  .object({
    item_id: ItemId,
    refresh_request_id: EventId.describe('Event id of the RefreshRequested this answers.'),
    plaid_request_id: z.string().min(1).describe("Plaid's request_id for the accepted call."),
    days_requested: DaysRequested,
    attempts: Attempts,
    accepted_at: Timestamp.describe('When Plaid accepted the refresh.'),
    coalesced_into: EventId.optional().describe(
      'Present when this request shared the Plaid call made for another RefreshRequested: that request’s event id.',
    ),
  })
  .meta({ title: 'RefreshAccepted v1 data' })
  .describe('Plaid accepted the refresh; CASHFLOW_REPORT_READY follows when the data is ready.');
export type RefreshAcceptedData = z.infer<typeof RefreshAcceptedData>;
