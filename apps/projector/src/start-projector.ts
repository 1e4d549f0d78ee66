import { listenHttpApp, type Logger } from '@cashflow/observability';
import type { INestApplication } from '@nestjs/common';
import type { ProjectorConfig } from './config';
import { ProjectorModule } from './projector.module';

/**
 * The projector, built and started from its configuration: consuming, projecting and serving
 * the read API. `app.close()` stops it. Used by main.ts and the tests alike.
 */
export function startProjector(config: ProjectorConfig, logger: Logger): Promise<INestApplication> {
  return listenHttpApp({ module: ProjectorModule.forRoot(config, logger), logger, ...config.http });
}
