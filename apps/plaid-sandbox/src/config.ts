import { commonVariables, loadConfig, ports } from '@cashflow/config';
import { z } from 'zod';

export const SERVICE = 'plaid-sandbox';

const PlaidSandboxEnv = z
  .object({ ...commonVariables, PLAID_SANDBOX_PORT: ports.PLAID_SANDBOX_PORT })
  .transform((env) => ({
    logLevel: env.LOG_LEVEL,
    http: { host: env.BIND_ADDRESS, port: env.PLAID_SANDBOX_PORT },
  }));

export type PlaidSandboxConfig = z.output<typeof PlaidSandboxEnv>;

export function loadPlaidSandboxConfig(env: NodeJS.ProcessEnv = process.env): PlaidSandboxConfig {
  return loadConfig(SERVICE, PlaidSandboxEnv, env);
}
