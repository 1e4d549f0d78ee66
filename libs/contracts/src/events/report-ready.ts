import { z } from 'zod';
import { WebhookDelivery } from './common';

export const ReportReadyData = z
  .object({ ...WebhookDelivery })
  .meta({ title: 'ReportReady v1 data' })
  .describe(
    'Plaid signalled CASHFLOW_REPORT_READY without an error: fresh data can be read with /cashflow_report/get.',
  );
export type ReportReadyData = z.infer<typeof ReportReadyData>;
