import { commonVariables, loadConfig, plaidSandboxVariables, ports } from '@cashflow/config';
import { z } from 'zod';
import type { Faults } from './faults';
import { LatencySpecError, parseLatency } from './latency';

export const SERVICE = 'plaid-sandbox';

const PlaidSandboxEnv = z
  .object({
    ...commonVariables,
    ...plaidSandboxVariables,
    PLAID_SANDBOX_PORT: ports.PLAID_SANDBOX_PORT,
    WEBHOOK_INGRESS_PORT: ports.WEBHOOK_INGRESS_PORT,
    /** /cashflow_report/get calls per Item per rate-limit window; 0 (default) is no limit. */
    PLAID_SANDBOX_GET_RATE_LIMIT_PER_ITEM: z.coerce.number().int().min(0).default(0),
    /** /cashflow_report/get calls per client per rate-limit window; 0 (default) is no limit. */
    PLAID_SANDBOX_GET_RATE_LIMIT_PER_CLIENT: z.coerce.number().int().min(0).default(0),
  })
  .transform((env, ctx) => {
    let latency = parseLatency('fixed:0');
    try {
      latency = parseLatency(env.PLAID_SANDBOX_REFRESH_LATENCY);
    } catch (error) {
      if (!(error instanceof LatencySpecError)) throw error;
      ctx.addIssue({
        code: 'custom',
        path: ['PLAID_SANDBOX_REFRESH_LATENCY'],
        message: error.message,
      });
    }
    if (env.PLAID_SANDBOX_FAULT_ERROR_RATE + env.PLAID_SANDBOX_FAULT_TIMEOUT_RATE > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['PLAID_SANDBOX_FAULT_TIMEOUT_RATE'],
        message:
          'PLAID_SANDBOX_FAULT_ERROR_RATE + PLAID_SANDBOX_FAULT_TIMEOUT_RATE must not exceed 1',
      });
    }
    const faults: Faults = {
      errorRate: env.PLAID_SANDBOX_FAULT_ERROR_RATE,
      timeoutRate: env.PLAID_SANDBOX_FAULT_TIMEOUT_RATE,
      latencySpec: env.PLAID_SANDBOX_REFRESH_LATENCY,
      latency,
    };
    return {
      logLevel: env.LOG_LEVEL,
      http: { host: env.BIND_ADDRESS, port: env.PLAID_SANDBOX_PORT },
      credentials: { clientId: env.PLAID_SANDBOX_CLIENT_ID, secret: env.PLAID_SANDBOX_SECRET },
      defaultWebhook:
        env.PLAID_SANDBOX_WEBHOOK_URL ??
        `http://127.0.0.1:${env.WEBHOOK_INGRESS_PORT}/webhooks/plaid`,
      timeScale: env.PLAID_SANDBOX_TIME_SCALE,
      webhookTimeoutMs: env.PLAID_SANDBOX_WEBHOOK_TIMEOUT_MS,
      webhookGiveUpAfterMs: env.PLAID_SANDBOX_WEBHOOK_GIVE_UP_AFTER_MS,
      faults,
      extractionDelayMs: env.PLAID_SANDBOX_EXTRACTION_DELAY_MS,
      rateLimits: {
        perItem: env.PLAID_SANDBOX_RATE_LIMIT_PER_ITEM,
        perClient: env.PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT,
        windowMs: env.PLAID_SANDBOX_RATE_LIMIT_WINDOW_MS,
        getPerItem: env.PLAID_SANDBOX_GET_RATE_LIMIT_PER_ITEM,
        getPerClient: env.PLAID_SANDBOX_GET_RATE_LIMIT_PER_CLIENT,
      },
      seedFile: env.PLAID_SANDBOX_SEED_FILE,
      deliveryLogLimit: env.PLAID_SANDBOX_DELIVERY_LOG_LIMIT,
    };
  });

export type PlaidSandboxConfig = z.output<typeof PlaidSandboxEnv>;

export function loadPlaidSandboxConfig(env: NodeJS.ProcessEnv = process.env): PlaidSandboxConfig {
  return loadConfig(SERVICE, PlaidSandboxEnv, env);
}
