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

/** `name:token,...`: bearer tokens an HTTP API accepts; the name is what gets logged. */
const bearerTokens = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(
        z
          .string()
          .regex(
            /^[A-Za-z0-9._-]+:[A-Za-z0-9._~+/=-]{24,}$/,
            'each entry must be name:token, the token at least 24 characters',
          ),
      )
      .min(1),
  )
  .transform((entries) =>
    entries.map((e) => ({
      name: e.slice(0, e.indexOf(':')),
      token: e.slice(e.indexOf(':') + 1),
    })),
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
  /**
   * How long a consumer may go without a heartbeat before its group hands its partitions to
   * others: a process killed without leaving holds them this long. Within the broker's
   * group.min/max.session.timeout.ms (6 s to 30 min by default).
   */
  KAFKA_SESSION_TIMEOUT_MS: z.coerce.number().int().min(6000).max(1_800_000).default(30_000),
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
  /** How long a webhook receiver has to answer; default Plaid's 10 s times the time scale. */
  PLAID_SANDBOX_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(1).optional(),
  /**
   * How long a webhook is retried before the sandbox gives up on it (as is, not scaled); default
   * Plaid's 24 h times the time scale.
   */
  PLAID_SANDBOX_WEBHOOK_GIVE_UP_AFTER_MS: z.coerce.number().int().min(1).optional(),
  /** `fixed:MS`, `uniform:MIN-MAX` or `lognormal:median=MS,p99=MS`. */
  PLAID_SANDBOX_REFRESH_LATENCY: z.string().min(1).default('lognormal:median=3000,p99=25000'),
  /** Time from an accepted refresh to CASHFLOW_REPORT_READY. */
  PLAID_SANDBOX_EXTRACTION_DELAY_MS: z.coerce.number().int().min(0).default(5000),
  /** Share of refresh calls answered 500 INTERNAL_SERVER_ERROR, whatever the Item (0..1). */
  PLAID_SANDBOX_FAULT_ERROR_RATE: z.coerce.number().min(0).max(1).default(0),
  /** Share of refresh calls held open and never answered (0..1). */
  PLAID_SANDBOX_FAULT_TIMEOUT_RATE: z.coerce.number().min(0).max(1).default(0),
  PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: z.coerce.number().int().min(1).default(2),
  PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: z.coerce.number().int().min(1).default(100),
  PLAID_SANDBOX_RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(1).default(60_000),
  /**
   * Webhook deliveries kept for GET /sandbox/webhooks, and /cashflow_report/get answers for
   * GET /sandbox/get_answers; the oldest (finished) are forgotten.
   */
  PLAID_SANDBOX_DELIVERY_LOG_LIMIT: z.coerce.number().int().min(1).default(200_000),
  /** JSON file of Items to create at start (same shape as POST /sandbox/items). */
  PLAID_SANDBOX_SEED_FILE: z.string().min(1).optional(),
};

const keyList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(
        z
          .string()
          .regex(/^[A-Za-z0-9._-]+:[A-Za-z0-9+/=_-]+$/, 'each key must be id:base64 (32 bytes)')
          .refine(
            (k) => Buffer.from(k.slice(k.indexOf(':') + 1), 'base64').length === 32,
            'each key must be 32 bytes (base64)',
          ),
      )
      .min(1),
  )
  .transform(
    (keys) =>
      new Map(
        keys.map((k) => [
          k.slice(0, k.indexOf(':')),
          Buffer.from(k.slice(k.indexOf(':') + 1), 'base64'),
        ]),
      ),
  );

/** Access tokens at rest, and who may register them. */
export const accessTokenVariables = {
  /** `id:base64key,...`: 32-byte AES-256-GCM keys; keep old ones listed until re-encrypted. */
  TOKEN_ENCRYPTION_KEYS: keyList,
  /** Key new tokens are encrypted with; default the first of TOKEN_ENCRYPTION_KEYS. */
  TOKEN_ENCRYPTION_KEY_ID: z.string().min(1).optional(),
  /** `name:token,...`: bearer tokens allowed to register, rotate and remove access tokens. */
  ADMIN_API_TOKENS: bearerTokens,
};

/** The refresh worker's pace and patience. */
export const refreshWorkerVariables = {
  /** Plaid calls in flight at once, across all Items. */
  REFRESH_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(10_000).default(500),
  /** Plaid calls per attempt budget, the first included. */
  REFRESH_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
  REFRESH_BACKOFF_BASE_MS: z.coerce.number().int().min(1).default(1000),
  REFRESH_BACKOFF_MAX_MS: z.coerce
    .number()
    .int()
    .min(1)
    .default(15 * 60_000),
  PLAID_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(1).default(10_000),
  /** Headers and body time-outs; Plaid documents refreshes "up to 30 seconds or more". */
  PLAID_RESPONSE_TIMEOUT_MS: z.coerce.number().int().min(1).default(90_000),
  PLAID_RATE_LIMIT_PER_ITEM: z.coerce.number().int().min(1).default(2),
  PLAID_RATE_LIMIT_PER_CLIENT: z.coerce.number().int().min(1).default(100),
  /**
   * Who PLAID_RATE_LIMIT_PER_CLIENT counts for: `deployment`, every replica together (turns
   * taken from one window in PostgreSQL), or `process`, each replica alone (N replicas then get
   * N times the limit).
   */
  PLAID_RATE_LIMIT_SCOPE: z.enum(['deployment', 'process']).default('deployment'),
  /** Plaid's minute plus a second: calls counted here arrive at Plaid a little later. */
  PLAID_RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(1).default(61_000),
  /** How often parked retries are looked for. */
  REFRESH_RETRY_POLL_MS: z.coerce.number().int().min(10).default(500),
  /** How long SIGTERM waits for in-flight Plaid calls before stopping anyway. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
  /**
   * Refuse a refresh of an Item known to need its user (needs_user_action, revoked) at once,
   * without a Plaid call, unless the request says force. Health is kept either way.
   */
  ITEM_HEALTH_REFUSALS: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .default('true')
    .transform((v) => v === 'true'),
};

export const webhookIngressVariables = {
  /** The public path Plaid POSTs webhooks to (the Item's webhook URL ends with it). */
  WEBHOOK_PATH: z
    .string()
    .regex(/^\/[A-Za-z0-9._~/-]*$/, 'must be a URL path starting with /')
    .default('/webhooks/plaid'),
  /** Larger bodies are answered 413 without being read further. Plaid's webhooks are ~1 KiB. */
  WEBHOOK_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(10_485_760).default(65_536),
  /** A request not fully received by then is answered 408 and closed (slow clients). */
  WEBHOOK_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  /**
   * The longest a webhook waits for Kafka before it is answered 503, so Plaid retries it. Must
   * stay below Plaid's 10 s answer window.
   */
  WEBHOOK_PUBLISH_TIMEOUT_MS: z.coerce.number().int().min(100).max(9_000).default(7_000),
  /** How far in the future a JWT's iat may be (clock skew between Plaid and us). */
  WEBHOOK_CLOCK_SKEW_MS: z.coerce.number().int().min(0).max(300_000).default(30_000),
  /** Fetches of unknown key ids from Plaid per minute; beyond it, unknown kids are answered 503. */
  WEBHOOK_KEY_FETCHES_PER_MINUTE: z.coerce.number().int().min(1).default(30),
  /** How long a fetched key is trusted before Plaid is asked again whether it has expired. */
  WEBHOOK_KEY_CACHE_TTL_MS: z.coerce.number().int().min(1000).default(3_600_000),
};

/** The report fetcher's pace, patience, and where the transactions go. */
export const reportFetcherVariables = {
  /** Fetches under way at once, across all Items (each holds a database connection). */
  REPORT_FETCH_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  /** Transactions per /cashflow_report/get page (Plaid's maximum is 500). */
  REPORT_FETCH_PAGE_SIZE: z.coerce.number().int().min(1).max(500).default(500),
  /** Attempts at one fetch (Plaid or network errors that may pass) before ReportFetchFailed. */
  REPORT_FETCH_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
  /** Times one attempt starts its paging over because the data changed under it. */
  REPORT_FETCH_MAX_RESTARTS: z.coerce.number().int().min(0).max(20).default(3),
  REPORT_FETCH_BACKOFF_BASE_MS: z.coerce.number().int().min(1).default(1000),
  REPORT_FETCH_BACKOFF_MAX_MS: z.coerce
    .number()
    .int()
    .min(1)
    .default(15 * 60_000),
  /** How often due fetches are looked for (new reports wake the fetcher at once). */
  REPORT_FETCH_POLL_MS: z.coerce.number().int().min(10).default(1000),
  /**
   * An accepted refresh whose report has not come this long after its acceptance is overdue:
   * the fetcher polls /cashflow_report/get (count 1) for its data. Plaid usually sends the
   * webhook within minutes.
   */
  REPORT_OVERDUE_AFTER_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(15 * 60_000),
  /** Polling for a refresh ends this long after its acceptance, with ReportOverdue. */
  REPORT_GIVE_UP_AFTER_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(6 * 60 * 60_000),
  /**
   * Delay after the first poll of an Item; it doubles after each poll up to the maximum. Never
   * shorter than the per-Item budget allows (PLAID_RATE_LIMIT_WINDOW_MS / PLAID_RATE_LIMIT_PER_ITEM).
   */
  REPORT_POLL_BACKOFF_BASE_MS: z.coerce.number().int().min(100).default(60_000),
  REPORT_POLL_BACKOFF_MAX_MS: z.coerce
    .number()
    .int()
    .min(100)
    .default(30 * 60_000),
  /** `false` keeps transaction data off Kafka: no changelog records (the events still go). */
  REPORT_CHANGELOG_ENABLED: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .default('true')
    .transform((v) => v === 'true'),
};

/** The projector's read API and its idea of a stuck refresh. */
export const projectorVariables = {
  /** `name:token,...`: bearer tokens allowed to read the projection API. */
  PROJECTOR_API_TOKENS: bearerTokens,
  /** A refresh accepted this long ago with no webhook since counts as stuck. */
  PROJECTOR_STUCK_AFTER_MINUTES: z.coerce.number().int().min(1).max(10_080).default(30),
};

/** What the CLI needs to reach the worker's, the projector's and the report fetcher's APIs. */
export const cliVariables = {
  REFRESH_WORKER_URL: z.string().url().default('http://127.0.0.1:8081'),
  /** One bearer token from ADMIN_API_TOKENS (the token part only). */
  ADMIN_API_TOKEN: z.string().min(24).optional(),
  /** The projector's read API, for `status` and `list`. */
  PROJECTOR_URL: z.string().url().default('http://127.0.0.1:8083'),
  /** One bearer token from PROJECTOR_API_TOKENS (the token part only). */
  PROJECTOR_API_TOKEN: z.string().min(24).optional(),
  /** The report fetcher's admin API, for `report fetch` (with ADMIN_API_TOKEN). */
  REPORT_FETCHER_URL: z.string().url().default('http://127.0.0.1:8084'),
};

export const TRACES_SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;

/** An OTLP/HTTP endpoint: http or https, with a host (`collector:4318` alone is not a URL here). */
const otlpUrl = z
  .string()
  .url()
  .refine(
    (u) => /^https?:\/\/[^/]/.test(u),
    'must be an http:// or https:// URL, e.g. http://127.0.0.1:4318',
  );

/**
 * OpenTelemetry's standard variables, the subset the apps read. Tracing is off unless an OTLP
 * endpoint is set; the exporter itself also reads OTEL_EXPORTER_OTLP_HEADERS and
 * OTEL_EXPORTER_OTLP_TIMEOUT, and the resource OTEL_RESOURCE_ATTRIBUTES.
 */
export const tracingVariables = {
  /** OTLP over HTTP (JSON), e.g. http://127.0.0.1:4318; traces go to <endpoint>/v1/traces. */
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl.optional(),
  /** The traces endpoint in full (used as given), overriding OTEL_EXPORTER_OTLP_ENDPOINT. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpUrl.optional(),
  /** `true` (any case) turns tracing off even with an endpoint set. */
  OTEL_SDK_DISABLED: z
    .string()
    .transform((v) => v.trim().toLowerCase())
    .pipe(z.enum(['true', 'false']))
    .default('false'),
  /** Overrides the service name (default: the app's, e.g. refresh-worker). */
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  OTEL_TRACES_SAMPLER: z.enum(TRACES_SAMPLERS).default('parentbased_always_on'),
  /** The ratio for the *traceidratio samplers, 0 to 1. */
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).default(1),
};

export const ports = {
  REFRESH_WORKER_PORT: port(8081),
  WEBHOOK_INGRESS_PORT: port(8080),
  WEBHOOK_INGRESS_ADMIN_PORT: port(8082),
  PROJECTOR_PORT: port(8083),
  REPORT_FETCHER_PORT: port(8084),
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
  ...accessTokenVariables,
  ...refreshWorkerVariables,
  ...reportFetcherVariables,
  ...webhookIngressVariables,
  ...projectorVariables,
  ...cliVariables,
  ...tracingVariables,
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

/**
 * The settings every Kafka-consuming app with a database derives the same way from its
 * variables: log level, Kafka client and consumer group (named after the service, behind the
 * topic prefix), and the database connection (named after the service in pg_stat_activity).
 */
export function consumerAppSettings(
  service: string,
  env: z.output<
    z.ZodObject<typeof commonVariables & typeof kafkaVariables & typeof databaseVariables>
  >,
) {
  return {
    logLevel: env.LOG_LEVEL,
    kafka: {
      brokers: env.KAFKA_BROKERS,
      clientId: env.KAFKA_CLIENT_ID ?? `cashflow-${service}`,
      topicPrefix: env.KAFKA_TOPIC_PREFIX,
    },
    groupId: `${env.KAFKA_TOPIC_PREFIX}cashflow-${service}`,
    sessionTimeoutMs: env.KAFKA_SESSION_TIMEOUT_MS,
    database: { url: env.DATABASE_URL, applicationName: `cashflow-${service}` },
  };
}
