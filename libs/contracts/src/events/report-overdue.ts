import { z } from 'zod';
import { EventId, ItemId, Timestamp } from './common';
import { FetchFailure } from './report-fetched';

export const ReportOverdueData = z
  .object({
    item_id: ItemId,
    refresh_request_ids: z
      .array(EventId)
      .min(1)
      .describe('Event ids of the RefreshRequested whose report never came.'),
    accepted_at: Timestamp.describe('The earliest of their acceptances.'),
    polls: z
      .number()
      .int()
      .min(0)
      .describe('/cashflow_report/get calls made for them after they became overdue.'),
    last_successful_update_time: Timestamp.nullable().describe(
      'What the last poll Plaid answered showed (older than the acceptances); null when none was answered.',
    ),
    last_error: FetchFailure.nullable().describe(
      'The last poll’s error, null when it was answered.',
    ),
    overdue_at: Timestamp.describe('When the report fetcher gave up waiting.'),
  })
  .meta({ title: 'ReportOverdue v1 data' })
  .describe(
    'Accepted refreshes whose report neither came by webhook nor showed up when the report fetcher polled Plaid until REPORT_GIVE_UP_AFTER_MS: no data will be fetched for them. Ask again to refresh the Item.',
  );
export type ReportOverdueData = z.infer<typeof ReportOverdueData>;
