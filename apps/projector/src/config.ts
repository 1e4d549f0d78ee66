import {
  commonVariables,
  databaseVariables,
  kafkaVariables,
  loadConfig,
  ports,
  projectorVariables,
} from '@cashflow/config';
import { z } from 'zod';

export const SERVICE = 'projector';

const ProjectorEnv = z
  .object({
    ...commonVariables,
    ...kafkaVariables,
    ...databaseVariables,
    ...projectorVariables,
    PROJECTOR_PORT: ports.PROJECTOR_PORT,
  })
  .transform((env) => ({
    logLevel: env.LOG_LEVEL,
    http: { host: env.BIND_ADDRESS, port: env.PROJECTOR_PORT },
    kafka: {
      brokers: env.KAFKA_BROKERS,
      clientId: env.KAFKA_CLIENT_ID ?? `cashflow-${SERVICE}`,
      topicPrefix: env.KAFKA_TOPIC_PREFIX,
    },
    groupId: `${env.KAFKA_TOPIC_PREFIX}cashflow-${SERVICE}`,
    database: { url: env.DATABASE_URL, applicationName: `cashflow-${SERVICE}` },
    apiTokens: env.PROJECTOR_API_TOKENS,
    stuckAfterMinutes: env.PROJECTOR_STUCK_AFTER_MINUTES,
  }));

export type ProjectorConfig = z.output<typeof ProjectorEnv>;

export function loadProjectorConfig(env: NodeJS.ProcessEnv = process.env): ProjectorConfig {
  return loadConfig(SERVICE, ProjectorEnv, env);
}
