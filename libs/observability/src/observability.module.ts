import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { Logger } from 'pino';
import { HealthController } from './health.controller';
import { METRICS_REGISTRY, MetricsController, createMetricsRegistry } from './metrics';
import { READINESS_CHECKS } from './readiness';

export const LOGGER = Symbol('LOGGER');

export interface ObservabilityOptions {
  readonly service: string;
  readonly logger: Logger;
  /** Providers (by token) implementing ReadinessCheck; `/health/ready` checks each. */
  readonly readiness: readonly (string | symbol | (abstract new (...args: never[]) => unknown))[];
}

/** `/health/live`, `/health/ready` (alias `/health`) and `/metrics`, plus the app's logger. */
@Module({})
export class ObservabilityModule {
  static forRoot(options: ObservabilityOptions): DynamicModule {
    const providers: Provider[] = [
      { provide: LOGGER, useValue: options.logger },
      { provide: METRICS_REGISTRY, useValue: createMetricsRegistry(options.service) },
      {
        provide: READINESS_CHECKS,
        useFactory: (...checks: unknown[]) => checks,
        inject: [...options.readiness],
      },
    ];
    return {
      module: ObservabilityModule,
      global: true,
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController, MetricsController],
      providers,
      exports: [LOGGER, METRICS_REGISTRY],
    };
  }
}
