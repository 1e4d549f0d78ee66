import { ObservabilityModule, type Logger } from '@cashflow/observability';
import { Module, type DynamicModule } from '@nestjs/common';
import { SERVICE } from './config';

/** A local double of Plaid's Cashflow Report API that signs its webhooks. */
@Module({})
export class PlaidSandboxModule {
  static forRoot(logger: Logger): DynamicModule {
    return {
      module: PlaidSandboxModule,
      imports: [ObservabilityModule.forRoot({ service: SERVICE, logger, readiness: [] })],
    };
  }
}
