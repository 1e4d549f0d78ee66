import {
  commonVariables,
  kafkaVariables,
  loadConfig,
  plaidVariables,
  ports,
  resolvePlaid,
} from '@cashflow/config';
import { z } from 'zod';

export const SERVICE = 'refresh-worker';

const RefreshWorkerEnv = z
  .object({
    ...commonVariables,
    ...kafkaVariables,
    ...plaidVariables,
    REFRESH_WORKER_PORT: ports.REFRESH_WORKER_PORT,
    PLAID_SANDBOX_PORT: ports.PLAID_SANDBOX_PORT,
  })
  .transform((env, ctx) => ({
    logLevel: env.LOG_LEVEL,
    http: { host: env.BIND_ADDRESS, port: env.REFRESH_WORKER_PORT },
    kafka: {
      brokers: env.KAFKA_BROKERS,
      clientId: env.KAFKA_CLIENT_ID ?? `cashflow-${SERVICE}`,
      topicPrefix: env.KAFKA_TOPIC_PREFIX,
    },
    plaid: resolvePlaid(env, ctx, env.PLAID_SANDBOX_PORT),
  }));

export type RefreshWorkerConfig = z.output<typeof RefreshWorkerEnv>;

export function loadRefreshWorkerConfig(env: NodeJS.ProcessEnv = process.env): RefreshWorkerConfig {
  return loadConfig(SERVICE, RefreshWorkerEnv, env);
}
