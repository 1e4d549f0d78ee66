import { listenHttpApp, type Logger } from '@cashflow/observability';
import type { INestApplication } from '@nestjs/common';
import type { PlaidSandboxConfig } from './config';
import { configureSandboxApp } from './configure-app';
import { PlaidSandboxModule } from './plaid-sandbox.module';

/**
 * The Plaid sandbox, built and listening from its configuration. `app.close()` stops it. Used by
 * main.ts and the tests alike.
 */
export function startPlaidSandbox(
  config: PlaidSandboxConfig,
  logger: Logger,
): Promise<INestApplication> {
  return listenHttpApp({
    module: PlaidSandboxModule.forRoot(config, logger),
    logger,
    ...config.http,
    bodyParser: false,
    configure: configureSandboxApp,
  });
}
