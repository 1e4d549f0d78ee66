import { z } from 'zod';
import { EventId, Timestamp, WebhookDelivery } from './common';

/** How a report's readiness was learnt: Plaid's webhook, or the report fetcher asking Plaid. */
export const FoundBy = z
  .enum(['webhook', 'polling'])
  .describe(
    'webhook: Plaid’s CASHFLOW_REPORT_READY, published by the webhook ingress. polling: no webhook came in time, and /cashflow_report/get showed data no older than an overdue refresh’s acceptance (published by the report fetcher; `poll` says what Plaid answered).',
  );
export type FoundBy = z.infer<typeof FoundBy>;

/** What the report fetcher's poll saw, for a ReportReady found by polling. */
export const PollAnswer = z
  .object({
    poll_id: z.uuid().describe('Identifies the poll; the event id is derived from it.'),
    plaid_request_id: z
      .string()
      .min(1)
      .describe('request_id of Plaid’s /cashflow_report/get answer that showed the data.'),
    last_successful_update_time: Timestamp.describe(
      'Plaid’s last_successful_update_time in that answer: no earlier than the acceptances it answers.',
    ),
    refresh_request_ids: z
      .array(EventId)
      .min(1)
      .describe('Event ids of the overdue RefreshRequested whose data the answer showed ready.'),
    polled_at: Timestamp.describe('When Plaid answered.'),
  })
  .describe('What the report fetcher’s /cashflow_report/get poll answered.');
export type PollAnswer = z.infer<typeof PollAnswer>;

export const ReportReadyData = z
  .object({
    ...WebhookDelivery,
    found_by: FoundBy.default('webhook'),
    poll: PollAnswer.optional().describe(
      'Present when found by polling. Such a ReportReady has no webhook: webhook_type and webhook_code are Plaid’s for the webhook that did not come, environment is null, delivery_id is `poll:` and the poll id, and webhook is empty.',
    ),
  })
  .meta({ title: 'ReportReady v1 data' })
  .describe(
    'Plaid signalled CASHFLOW_REPORT_READY without an error (or, when its webhook did not come, the report fetcher found the data by polling): fresh data can be read with /cashflow_report/get.',
  );
export type ReportReadyData = z.infer<typeof ReportReadyData>;
