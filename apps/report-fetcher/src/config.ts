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
    ...reportFetcherVariables,
    REPORT_FETCHER_PORT: ports.REPORT_FETCHER_PORT,
    PLAID_SANDBOX_PORT: ports.PLAID_SANDBOX_PORT,
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
  }));

export type ReportFetcherConfig = z.output<typeof ReportFetcherEnv>;

export function loadReportFetcherConfig(env: NodeJS.ProcessEnv = process.env): ReportFetcherConfig {
  return loadConfig(SERVICE, ReportFetcherEnv, env);
}
