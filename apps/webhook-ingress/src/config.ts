import {
  commonVariables,
  kafkaVariables,
  loadConfig,
  plaidVariables,
  ports,
  resolvePlaid,
} from '@cashflow/config';
import { z } from 'zod';

export const SERVICE = 'webhook-ingress';

const WebhookIngressEnv = z
  .object({
    ...commonVariables,
    ...kafkaVariables,
    ...plaidVariables,
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
  }));

export type WebhookIngressConfig = z.output<typeof WebhookIngressEnv>;

export function loadWebhookIngressConfig(
  env: NodeJS.ProcessEnv = process.env,
): WebhookIngressConfig {
  return loadConfig(SERVICE, WebhookIngressEnv, env);
}
