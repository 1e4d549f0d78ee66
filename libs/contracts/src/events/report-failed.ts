import { z } from 'zod';
import { PlaidError, WebhookDelivery } from './common';

export const ReportFailedData = z
  .object({ ...WebhookDelivery, error: PlaidError })
  .meta({ title: 'ReportFailed v1 data' })
  .describe(
    'Plaid signalled CASHFLOW_REPORT_READY carrying an error: the refresh did not produce data.',
  );
export type ReportFailedData = z.infer<typeof ReportFailedData>;
