import { KafkaModule, KafkaReadiness } from '@cashflow/kafka';
import { ObservabilityModule, type Logger } from '@cashflow/observability';
import { DatabaseReadiness, PersistenceModule } from '@cashflow/persistence';
import { Module, type DynamicModule } from '@nestjs/common';
import { SERVICE, type ProjectorConfig } from './config';

/** The projector: every event topic -> per-Item refresh state in PostgreSQL. */
@Module({})
export class ProjectorModule {
  static forRoot(config: ProjectorConfig, logger: Logger): DynamicModule {
    return {
      module: ProjectorModule,
      imports: [
        KafkaModule.forRoot({ ...config.kafka, logger }),
        PersistenceModule.forRoot(config.database),
        ObservabilityModule.forRoot({
          service: SERVICE,
          logger,
          readiness: [KafkaReadiness, DatabaseReadiness],
        }),
      ],
    };
  }
}
