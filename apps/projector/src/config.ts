import {
  commonVariables,
  databaseVariables,
  kafkaVariables,
  loadConfig,
  ports,
} from '@cashflow/config';
import { z } from 'zod';

export const SERVICE = 'projector';

const ProjectorEnv = z
  .object({
    ...commonVariables,
    ...kafkaVariables,
    ...databaseVariables,
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
    database: { url: env.DATABASE_URL, applicationName: `cashflow-${SERVICE}` },
  }));

export type ProjectorConfig = z.output<typeof ProjectorEnv>;

export function loadProjectorConfig(env: NodeJS.ProcessEnv = process.env): ProjectorConfig {
  return loadConfig(SERVICE, ProjectorEnv, env);
}
