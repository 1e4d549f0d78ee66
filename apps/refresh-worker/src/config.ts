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
  resolvePlaid,
} from '@cashflow/config';
import { z } from 'zod';

export const SERVICE = 'refresh-worker';

const RefreshWorkerEnv = z
  .object({
    ...commonVariables,
    ...kafkaVariables,
    ...databaseVariables,
    ...plaidVariables,
    ...accessTokenVariables,
    ...refreshWorkerVariables,
    REFRESH_WORKER_PORT: ports.REFRESH_WORKER_PORT,
    PLAID_SANDBOX_PORT: ports.PLAID_SANDBOX_PORT,
  })
  .superRefine((env, ctx) => {
    if (
      env.TOKEN_ENCRYPTION_KEY_ID &&
      !env.TOKEN_ENCRYPTION_KEYS.has(env.TOKEN_ENCRYPTION_KEY_ID)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['TOKEN_ENCRYPTION_KEY_ID'],
        message: 'must name one of the keys in TOKEN_ENCRYPTION_KEYS',
      });
    }
  })
  .transform((env, ctx) => ({
    ...consumerAppSettings(SERVICE, env),
    http: { host: env.BIND_ADDRESS, port: env.REFRESH_WORKER_PORT },
    plaid: {
      ...resolvePlaid(env, ctx, env.PLAID_SANDBOX_PORT),
      connectTimeoutMs: env.PLAID_CONNECT_TIMEOUT_MS,
      responseTimeoutMs: env.PLAID_RESPONSE_TIMEOUT_MS,
    },
    tokens: {
      keys: env.TOKEN_ENCRYPTION_KEYS,
      currentKeyId: env.TOKEN_ENCRYPTION_KEY_ID ?? [...env.TOKEN_ENCRYPTION_KEYS.keys()][0]!,
    },
    adminTokens: env.ADMIN_API_TOKENS,
    refresh: {
      maxInFlight: env.REFRESH_MAX_IN_FLIGHT,
      maxAttempts: env.REFRESH_MAX_ATTEMPTS,
      backoff: { baseMs: env.REFRESH_BACKOFF_BASE_MS, maxMs: env.REFRESH_BACKOFF_MAX_MS },
      perItem: { limit: env.PLAID_RATE_LIMIT_PER_ITEM, windowMs: env.PLAID_RATE_LIMIT_WINDOW_MS },
      perClient: {
        limit: env.PLAID_RATE_LIMIT_PER_CLIENT,
        windowMs: env.PLAID_RATE_LIMIT_WINDOW_MS,
      },
      perClientScope: env.PLAID_RATE_LIMIT_SCOPE,
      retryPollMs: env.REFRESH_RETRY_POLL_MS,
      shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
      refuseItemsNeedingUser: env.ITEM_HEALTH_REFUSALS,
    },
  }));

export type RefreshWorkerConfig = z.output<typeof RefreshWorkerEnv>;

export function loadRefreshWorkerConfig(env: NodeJS.ProcessEnv = process.env): RefreshWorkerConfig {
  return loadConfig(SERVICE, RefreshWorkerEnv, env);
}
