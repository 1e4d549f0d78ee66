import {
  consumerAppSettings,
  accessTokenVariables,
  commonVariables,
  databaseVariables,
  kafkaVariables,
  loadConfig,
  plaidVariables,
  ports,
  refreshWorkerVariables,
  reportFetcherVariables,
  resolvePlaid,
} from '@cashflow/config';
import { z } from 'zod';

export const SERVICE = 'report-fetcher';

const ReportFetcherEnv = z
  .object({
    ...commonVariables,
    ...kafkaVariables,
    ...databaseVariables,
    ...plaidVariables,
    TOKEN_ENCRYPTION_KEYS: accessTokenVariables.TOKEN_ENCRYPTION_KEYS,
    ADMIN_API_TOKENS: accessTokenVariables.ADMIN_API_TOKENS,
    PLAID_CONNECT_TIMEOUT_MS: refreshWorkerVariables.PLAID_CONNECT_TIMEOUT_MS,
    PLAID_RESPONSE_TIMEOUT_MS: refreshWorkerVariables.PLAID_RESPONSE_TIMEOUT_MS,
    SHUTDOWN_GRACE_MS: refreshWorkerVariables.SHUTDOWN_GRACE_MS,
    // Polls for overdue reports keep within the budgets refresh calls keep within.
    PLAID_RATE_LIMIT_PER_ITEM: refreshWorkerVariables.PLAID_RATE_LIMIT_PER_ITEM,
    PLAID_RATE_LIMIT_PER_CLIENT: refreshWorkerVariables.PLAID_RATE_LIMIT_PER_CLIENT,
    PLAID_RATE_LIMIT_WINDOW_MS: refreshWorkerVariables.PLAID_RATE_LIMIT_WINDOW_MS,
    PLAID_RATE_LIMIT_SCOPE: refreshWorkerVariables.PLAID_RATE_LIMIT_SCOPE,
    ...reportFetcherVariables,
    REPORT_FETCHER_PORT: ports.REPORT_FETCHER_PORT,
    PLAID_SANDBOX_PORT: ports.PLAID_SANDBOX_PORT,
  })
  .superRefine((env, ctx) => {
    if (env.REPORT_GIVE_UP_AFTER_MS <= env.REPORT_OVERDUE_AFTER_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['REPORT_GIVE_UP_AFTER_MS'],
        message: `must be longer than REPORT_OVERDUE_AFTER_MS (${env.REPORT_OVERDUE_AFTER_MS})`,
      });
    }
    if (env.REPORT_POLL_BACKOFF_MAX_MS < env.REPORT_POLL_BACKOFF_BASE_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['REPORT_POLL_BACKOFF_MAX_MS'],
        message: `must be at least REPORT_POLL_BACKOFF_BASE_MS (${env.REPORT_POLL_BACKOFF_BASE_MS})`,
      });
    }
  })
  .transform((env, ctx) => ({
    ...consumerAppSettings(SERVICE, env),
    http: { host: env.BIND_ADDRESS, port: env.REPORT_FETCHER_PORT },
    plaid: {
      ...resolvePlaid(env, ctx, env.PLAID_SANDBOX_PORT),
      connectTimeoutMs: env.PLAID_CONNECT_TIMEOUT_MS,
      responseTimeoutMs: env.PLAID_RESPONSE_TIMEOUT_MS,
    },
    // The fetcher only reads tokens: any listed key decrypts, none is used to encrypt.
    tokens: { keys: env.TOKEN_ENCRYPTION_KEYS },
    adminTokens: env.ADMIN_API_TOKENS,
    fetch: {
      concurrency: env.REPORT_FETCH_CONCURRENCY,
      pageSize: env.REPORT_FETCH_PAGE_SIZE,
      maxAttempts: env.REPORT_FETCH_MAX_ATTEMPTS,
      maxRestarts: env.REPORT_FETCH_MAX_RESTARTS,
      backoff: { baseMs: env.REPORT_FETCH_BACKOFF_BASE_MS, maxMs: env.REPORT_FETCH_BACKOFF_MAX_MS },
      pollMs: env.REPORT_FETCH_POLL_MS,
      changelog: env.REPORT_CHANGELOG_ENABLED,
      shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    },
    poll: {
      overdueAfterMs: env.REPORT_OVERDUE_AFTER_MS,
      giveUpAfterMs: env.REPORT_GIVE_UP_AFTER_MS,
      backoff: pollBackoff(env),
    },
    /** The per-client budget of polls (/cashflow_report/get), shared by every fetcher replica. */
    pollRateLimit: {
      limit: env.PLAID_RATE_LIMIT_PER_CLIENT,
      windowMs: env.PLAID_RATE_LIMIT_WINDOW_MS,
    },
    pollRateLimitScope: env.PLAID_RATE_LIMIT_SCOPE,
  }));

/** One Item is never polled more often than its Plaid budget allows. */
function pollBackoff(env: {
  REPORT_POLL_BACKOFF_BASE_MS: number;
  REPORT_POLL_BACKOFF_MAX_MS: number;
  PLAID_RATE_LIMIT_WINDOW_MS: number;
  PLAID_RATE_LIMIT_PER_ITEM: number;
}) {
  const spacing = Math.ceil(env.PLAID_RATE_LIMIT_WINDOW_MS / env.PLAID_RATE_LIMIT_PER_ITEM);
  const baseMs = Math.max(env.REPORT_POLL_BACKOFF_BASE_MS, spacing);
  return { baseMs, maxMs: Math.max(env.REPORT_POLL_BACKOFF_MAX_MS, baseMs) };
}

export type ReportFetcherConfig = z.output<typeof ReportFetcherEnv>;

export function loadReportFetcherConfig(env: NodeJS.ProcessEnv = process.env): ReportFetcherConfig {
  return loadConfig(SERVICE, ReportFetcherEnv, env);
}
