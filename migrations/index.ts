import { ConsumerCheckpoints1764000000000 } from './1764000000000-consumer-checkpoints';
import { ItemAccessTokens1764100000000 } from './1764100000000-item-access-tokens';
import { RefreshWorkerState1764200000000 } from './1764200000000-refresh-worker-state';
import { RefreshProjection1764300000000 } from './1764300000000-refresh-projection';
import { OpsViews1764300000001, grantReadOnly } from './1764300000001-ops-views';
import { ItemReports1764300000002 } from './1764300000002-item-reports';
import { RefreshRetryClaims1764500000000 } from './1764500000000-refresh-retry-claims';
import { RefreshRequestIds1764500000001 } from './1764500000001-refresh-request-ids';
import { RefreshRequestsByItem1764500000002 } from './1764500000002-refresh-requests-by-item';
import { ReportStore1764600000000, grantAnalytics } from './1764600000000-report-store';
import { ReportFetchProjection1764700000000 } from './1764700000000-report-fetch-projection';
import { MissedWebhooks1764800000000, grantPolls } from './1764800000000-missed-webhooks';
import { ItemHealth1764900000000, grantItemHealth } from './1764900000000-item-health';
import { PlaidCallBudget1765000000000 } from './1765000000000-plaid-call-budget';
import { ProjectionItemLocks1765100000000 } from './1765100000000-projection-item-locks';

/** Every migration, oldest first. TypeORM runs those not yet recorded in `migrations`. */
export const MIGRATIONS = [
  ConsumerCheckpoints1764000000000,
  ItemAccessTokens1764100000000,
  RefreshWorkerState1764200000000,
  RefreshProjection1764300000000,
  OpsViews1764300000001,
  ItemReports1764300000002,
  RefreshRetryClaims1764500000000,
  RefreshRequestIds1764500000001,
  RefreshRequestsByItem1764500000002,
  ReportStore1764600000000,
  ReportFetchProjection1764700000000,
  MissedWebhooks1764800000000,
  ItemHealth1764900000000,
  PlaidCallBudget1765000000000,
  ProjectionItemLocks1765100000000,
];

/**
 * Grants of the read roles, run after every migrate: a role a database administrator creates
 * after the migration that would have granted it (no CREATEROLE then) gets its tables on the
 * next `migrate`. Each grants only if its role exists.
 */
export const ROLE_GRANTS = [grantReadOnly, grantAnalytics, grantPolls, grantItemHealth];
