import { ObservabilityModule, type Logger } from '@cashflow/observability';
import { Module, type DynamicModule } from '@nestjs/common';
import { SandboxAdminController } from './admin/sandbox-admin.controller';
import { SERVICE, type PlaidSandboxConfig } from './config';
import { PlaidApiController } from './plaid-api/plaid-api.controller';
import { SANDBOX_CONFIG, SandboxService } from './sandbox.service';

/** A local double of Plaid's Cashflow Report API that signs its webhooks. */
@Module({})
export class PlaidSandboxModule {
  static forRoot(config: PlaidSandboxConfig, logger: Logger): DynamicModule {
    return {
      module: PlaidSandboxModule,
      imports: [ObservabilityModule.forRoot({ service: SERVICE, logger, readiness: [] })],
      controllers: [PlaidApiController, SandboxAdminController],
      providers: [{ provide: SANDBOX_CONFIG, useValue: config }, SandboxService],
      exports: [SandboxService],
    };
  }
}
