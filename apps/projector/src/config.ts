import {
  consumerAppSettings,
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
    ...consumerAppSettings(SERVICE, env),
    http: { host: env.BIND_ADDRESS, port: env.PROJECTOR_PORT },
    apiTokens: env.PROJECTOR_API_TOKENS,
    stuckAfterMinutes: env.PROJECTOR_STUCK_AFTER_MINUTES,
  }));

export type ProjectorConfig = z.output<typeof ProjectorEnv>;

export function loadProjectorConfig(env: NodeJS.ProcessEnv = process.env): ProjectorConfig {
  return loadConfig(SERVICE, ProjectorEnv, env);
}
