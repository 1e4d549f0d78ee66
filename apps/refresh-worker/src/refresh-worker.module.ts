import { KafkaModule, KafkaReadiness } from '@cashflow/kafka';
import { ObservabilityModule, type Logger } from '@cashflow/observability';
import { Module, type DynamicModule } from '@nestjs/common';
import { SERVICE, type RefreshWorkerConfig } from './config';

/** The refresh worker: RefreshRequested -> Plaid /cashflow_report/refresh -> outcome event. */
@Module({})
export class RefreshWorkerModule {
  static forRoot(config: RefreshWorkerConfig, logger: Logger): DynamicModule {
    return {
      module: RefreshWorkerModule,
      imports: [
        KafkaModule.forRoot({ ...config.kafka, logger }),
        ObservabilityModule.forRoot({ service: SERVICE, logger, readiness: [KafkaReadiness] }),
      ],
    };
  }
}
