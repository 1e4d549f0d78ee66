import {
  commonVariables,
  kafkaVariables,
  loadConfig,
  plaidVariables,
  ports,
  resolvePlaid,
  webhookIngressVariables,
} from '@cashflow/config';
import { z } from 'zod';

export const SERVICE = 'webhook-ingress';

const WebhookIngressEnv = z
  .object({
    ...commonVariables,
    ...kafkaVariables,
    ...plaidVariables,
    ...webhookIngressVariables,
    WEBHOOK_INGRESS_PORT: ports.WEBHOOK_INGRESS_PORT,
    WEBHOOK_INGRESS_ADMIN_PORT: ports.WEBHOOK_INGRESS_ADMIN_PORT,
    PLAID_SANDBOX_PORT: ports.PLAID_SANDBOX_PORT,
  })
  .superRefine((env, ctx) => {
    if (env.WEBHOOK_INGRESS_PORT === env.WEBHOOK_INGRESS_ADMIN_PORT) {
      ctx.addIssue({
        code: 'custom',
        path: ['WEBHOOK_INGRESS_ADMIN_PORT'],
        message:
          'must differ from WEBHOOK_INGRESS_PORT: health and metrics stay off the public port',
      });
    }
  })
  .transform((env, ctx) => ({
    logLevel: env.LOG_LEVEL,
    publicHttp: { host: env.BIND_ADDRESS, port: env.WEBHOOK_INGRESS_PORT },
    adminHttp: { host: env.BIND_ADDRESS, port: env.WEBHOOK_INGRESS_ADMIN_PORT },
    kafka: {
      brokers: env.KAFKA_BROKERS,
      clientId: env.KAFKA_CLIENT_ID ?? `cashflow-${SERVICE}`,
      topicPrefix: env.KAFKA_TOPIC_PREFIX,
    },
    plaid: resolvePlaid(env, ctx, env.PLAID_SANDBOX_PORT),
    webhook: {
      path: env.WEBHOOK_PATH,
      maxBodyBytes: env.WEBHOOK_MAX_BODY_BYTES,
      requestTimeoutMs: env.WEBHOOK_REQUEST_TIMEOUT_MS,
      publishTimeoutMs: env.WEBHOOK_PUBLISH_TIMEOUT_MS,
      clockSkewMs: env.WEBHOOK_CLOCK_SKEW_MS,
      keyFetchesPerMinute: env.WEBHOOK_KEY_FETCHES_PER_MINUTE,
      keyCacheTtlMs: env.WEBHOOK_KEY_CACHE_TTL_MS,
    },
  }));

export type WebhookIngressConfig = z.output<typeof WebhookIngressEnv>;

export function loadWebhookIngressConfig(
  env: NodeJS.ProcessEnv = process.env,
): WebhookIngressConfig {
  return loadConfig(SERVICE, WebhookIngressEnv, env);
}
