import type { kafkaVariables } from '@cashflow/config';
import { createKafka } from '@cashflow/kafka';
import { createLogger, type Logger } from '@cashflow/observability';
import type { z } from 'zod';

/** The CLI's Kafka client, from the KAFKA_* variables. */
export function kafkaFrom(env: z.output<z.ZodObject<typeof kafkaVariables>>, logger: Logger) {
  return createKafka({
    brokers: env.KAFKA_BROKERS,
    clientId: env.KAFKA_CLIENT_ID ?? 'cashflow-cli',
    topicPrefix: env.KAFKA_TOPIC_PREFIX,
    logger,
  });
}

/** The CLI logs to standard error: standard output is its answer, which scripts read. */
export function cliLogger(level: 'warn' | 'error' = 'warn'): Logger {
  return createLogger({ service: 'cli', level, destination: process.stderr });
}
