/**
 * The environment variables of cashflow-refresh: one set of names across every app, the scripts,
 * docker-compose.yml and the README. Each app composes the groups it needs.
 */
import { z } from 'zod';

const port = (fallback: number) => z.coerce.number().int().min(1).max(65535).default(fallback);

const brokerList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(z.string().regex(/^[^\s:/]+:\d{1,5}$/, 'each broker must be host:port'))
      .min(1, 'at least one broker, e.g. 127.0.0.1:19092'),
  );

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const commonVariables = {
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  /** Address the HTTP servers bind to; docker-compose sets 0.0.0.0. */
  BIND_ADDRESS: z.string().min(1).default('127.0.0.1'),
};

export const kafkaVariables = {
  KAFKA_BROKERS: brokerList,
  KAFKA_CLIENT_ID: z.string().min(1).optional(),
  KAFKA_TOPIC_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only')
    .default(''),
};

export const topicAdminVariables = {
  KAFKA_PARTITIONS: z.coerce.number().int().min(1).max(1000).default(12),
  KAFKA_REPLICATION_FACTOR: z.coerce.number().int().min(1).max(10).default(1),
};

export const databaseVariables = {
  DATABASE_URL: z
    .string()
    .url('must be a URL such as postgres://user:password@127.0.0.1:15432/cashflow')
    .refine((u) => /^postgres(ql)?:\/\//.test(u), 'must start with postgres:// or postgresql://'),
};

export const PLAID_ENVIRONMENTS = ['local', 'sandbox', 'production'] as const;
export const PLAID_BASE_URLS = {
  sandbox: 'https://sandbox.plaid.com',
  production: 'https://production.plaid.com',
} as const;

export const plaidVariables = {
  /** local = this project's Plaid sandbox app; sandbox and production = Plaid itself. */
  PLAID_ENV: z.enum(PLAID_ENVIRONMENTS).default('local'),
  /** Overrides the base URL PLAID_ENV implies. */
  PLAID_BASE_URL: z.string().url().optional(),
  /** Where the local sandbox answers when PLAID_ENV=local; default http://127.0.0.1:PLAID_SANDBOX_PORT. */
  PLAID_SANDBOX_URL: z.string().url().optional(),
  PLAID_CLIENT_ID: z.string().min(1).optional(),
  PLAID_SECRET: z.string().min(1).optional(),
};

/**
 * Credentials the local Plaid sandbox accepts unless told otherwise. They open nothing but the
 * sandbox on this machine; real Plaid credentials come only from the environment.
 */
export const LOCAL_SANDBOX_CREDENTIALS = {
  clientId: 'local-sandbox-client',
  secret: 'local-sandbox-not-a-secret',
} as const;

/** The local Plaid sandbox app's own settings; delays follow Plaid's documented values. */
export const plaidSandboxVariables = {
  PLAID_SANDBOX_CLIENT_ID: z.string().min(1).default(LOCAL_SANDBOX_CREDENTIALS.clientId),
  PLAID_SANDBOX_SECRET: z.string().min(1).default(LOCAL_SANDBOX_CREDENTIALS.secret),
  /** Where webhooks go for Items created without a webhook URL. */
  PLAID_SANDBOX_WEBHOOK_URL: z.string().url().optional(),
  /** Multiplies every delay (latency, extraction, webhook time-out and retries); tests use 0.001. */
  PLAID_SANDBOX_TIME_SCALE: z.coerce.number().positive().max(1000).default(1),
  /** `fixed:MS`, `uniform:MIN-MAX` or `lognormal:median=MS,p99=MS`. */
  PLAID_SANDBOX_REFRESH_LATENCY: z.string().min(1).default('lognormal:median=3000,p99=25000'),
  /** Time from an accepted refresh to CASHFLOW_REPORT_READY. */
  PLAID_SANDBOX_EXTRACTION_DELAY_MS: z.coerce.number().int().min(0).default(5000),
  PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: z.coerce.number().int().min(1).default(2),
  PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: z.coerce.number().int().min(1).default(100),
  PLAID_SANDBOX_RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(1).default(60_000),
  /** JSON file of Items to create at start (same shape as POST /sandbox/items). */
  PLAID_SANDBOX_SEED_FILE: z.string().min(1).optional(),
};

export const ports = {
  REFRESH_WORKER_PORT: port(8081),
  WEBHOOK_INGRESS_PORT: port(8080),
  WEBHOOK_INGRESS_ADMIN_PORT: port(8082),
  PROJECTOR_PORT: port(8083),
  PLAID_SANDBOX_PORT: port(8090),
};

/** Every variable any app reads, for docs and for checking docker-compose.yml against. */
export const ALL_VARIABLES = {
  ...commonVariables,
  ...kafkaVariables,
  ...topicAdminVariables,
  ...databaseVariables,
  ...plaidVariables,
  ...plaidSandboxVariables,
  ...ports,
};
export type VariableName = keyof typeof ALL_VARIABLES;

/**
 * Plaid settings resolved: the base URL PLAID_ENV implies, and credentials required for real
 * Plaid. The local sandbox accepts whatever credentials it was started with.
 */
export function resolvePlaid(
  env: z.output<z.ZodObject<typeof plaidVariables>>,
  ctx: z.RefinementCtx,
  localPort: number,
) {
  if (env.PLAID_ENV !== 'local') {
    for (const name of ['PLAID_CLIENT_ID', 'PLAID_SECRET'] as const) {
      if (!env[name]) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `required when PLAID_ENV=${env.PLAID_ENV}`,
        });
      }
    }
  }
  const baseUrl =
    env.PLAID_BASE_URL ??
    (env.PLAID_ENV === 'local'
      ? (env.PLAID_SANDBOX_URL ?? `http://127.0.0.1:${localPort}`)
      : PLAID_BASE_URLS[env.PLAID_ENV]);
  const local = env.PLAID_ENV === 'local';
  return {
    env: env.PLAID_ENV,
    baseUrl,
    clientId: env.PLAID_CLIENT_ID ?? (local ? LOCAL_SANDBOX_CREDENTIALS.clientId : ''),
    secret: env.PLAID_SECRET ?? (local ? LOCAL_SANDBOX_CREDENTIALS.secret : ''),
  };
}
