import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino censors wherever a log call puts them. Plaid access tokens, client secrets, keys and
 * verification JWTs must never reach a log line.
 */
export const REDACT_PATHS = [
  'access_token',
  '*.access_token',
  '*.*.access_token',
  'secret',
  '*.secret',
  '*.*.secret',
  'client_secret',
  '*.client_secret',
  'PLAID_SECRET',
  '*.PLAID_SECRET',
  'password',
  '*.password',
  'private_key',
  '*.private_key',
  'd',
  '*.d',
  'req.headers["plaid-secret"]',
  'req.headers["plaid-verification"]',
  'req.headers.authorization',
  'headers["plaid-secret"]',
  'headers["plaid-verification"]',
];

const SECRET_PATTERNS: readonly RegExp[] = [
  /access-(?:sandbox|development|production)-[A-Za-z0-9-]+/g,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /(postgres(?:ql)?:\/\/[^:/\s]+:)[^@\s]+@/g,
];

/** Removes secrets from free text (error messages, URLs) that redaction paths cannot reach. */
export function scrubSecrets(text: string): string {
  return SECRET_PATTERNS.reduce(
    (out, pattern) =>
      out.replace(pattern, (match, prefix?: string) =>
        typeof prefix === 'string' && match.startsWith(prefix)
          ? `${prefix}[REDACTED]@`
          : '[REDACTED]',
      ),
    text,
  );
}

export interface LoggerOptions {
  readonly service: string;
  readonly level: string;
  /** Defaults to stdout; tests pass a stream to read what was logged. */
  readonly destination?: pino.DestinationStream;
}

/** Fields of a failed query's error that hold its SQL and parameters (TypeORM, pg). */
const QUERY_FIELDS = ['query', 'parameters', 'driverError'] as const;

export function createLogger({ service, level, destination }: LoggerOptions): Logger {
  return pino(
    {
      level,
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      formatters: { level: (label) => ({ level: label }) },
      serializers: {
        err: (err: Error) => {
          const out = pino.stdSerializers.err(err);
          // A failed query's error carries its SQL and parameters (a page of people's bank
          // transactions, a token's ciphertext) and the driver's copy of them: never logged.
          const rest: Record<string, unknown> = { ...out };
          for (const field of QUERY_FIELDS) delete rest[field];
          return {
            ...rest,
            message: scrubSecrets(out.message),
            stack: scrubSecrets(out.stack ?? ''),
          };
        },
      },
      hooks: {
        logMethod(args, method) {
          // Messages are free text: scrub them too.
          const scrubbed = args.map((a) =>
            typeof a === 'string' ? scrubSecrets(a) : a,
          ) as Parameters<typeof method>;
          method.apply(this, scrubbed);
        },
      },
    },
    destination,
  );
}
