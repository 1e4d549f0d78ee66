import { topicName } from '@cashflow/contracts';
import {
  EventPublisher,
  KAFKA,
  KafkaModule,
  KafkaReadiness,
  assertTopicsExist,
} from '@cashflow/kafka';
import {
  BEARER_TOKENS,
  BearerAuthGuard,
  LOGGER,
  METRICS_REGISTRY,
  ObservabilityModule,
  type Logger,
} from '@cashflow/observability';
import { DatabaseReadiness, PersistenceModule, queryRows } from '@cashflow/persistence';
import {
  PROJECTED_TOPICS,
  PROJECTOR_CONSUMER,
  ProjectionStore,
  ProjectorConsumer,
  ProjectorMetrics,
  buildOpenApiDocument,
} from '@cashflow/projection';
import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  type DynamicModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { ProjectionQueries } from './api/projection-queries';
import { ReadApiController } from './api/read-api.controller';
import { ReportApiController } from './api/report-api.controller';
import { ReportQueries } from './api/report-queries';
import { SERVICE, type ProjectorConfig } from './config';

const CONFIG = Symbol('PROJECTOR_CONFIG');

/** `/openapi.json`: the read API's description, open to all. */
@Controller()
class OpenApiController {
  private readonly document = buildOpenApiDocument();

  @Get('openapi.json')
  openapi() {
    return this.document;
  }
}

/** Starts consuming once the app is up (topics must exist); stops first on shutdown. */
@Injectable()
class ConsumerLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    private readonly consumer: ProjectorConsumer,
    @Inject(KAFKA) private readonly kafka: Kafka,
    @Inject(CONFIG) private readonly config: ProjectorConfig,
    private readonly db: DataSource,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const [table] = await queryRows<{ found: string | null }>(
      this.db,
      `SELECT to_regclass('public.item_refresh_state')::text AS found`,
    );
    if (!table?.found) {
      throw new Error('the projection tables are missing: run `cashflow-refresh migrate` first');
    }
    await assertTopicsExist(
      this.kafka,
      PROJECTED_TOPICS.map((key) => topicName(key, this.config.kafka.topicPrefix)),
    );
    await this.consumer.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.consumer.stop();
  }
}

/**
 * The projector: every event topic -> per-Item refresh state in PostgreSQL, and its read API
 * (the projection, and the reports the report fetcher stored).
 */
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
      controllers: [ReadApiController, ReportApiController, OpenApiController],
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: BEARER_TOKENS, useValue: config.apiTokens },
        BearerAuthGuard,
        {
          provide: ProjectionQueries,
          useFactory: (db: DataSource) => new ProjectionQueries(db, config.stuckAfterMinutes),
          inject: [DataSource],
        },
        {
          provide: ReportQueries,
          useFactory: (db: DataSource) => new ReportQueries(db),
          inject: [DataSource],
        },
        {
          provide: ProjectorMetrics,
          useFactory: (registry: Registry, queries: ProjectionQueries) =>
            new ProjectorMetrics(registry, () => queries.stuckItems()),
          inject: [METRICS_REGISTRY, ProjectionQueries],
        },
        {
          provide: ProjectionStore,
          useFactory: (db: DataSource) =>
            new ProjectionStore(db, { schema: 'public', consumer: PROJECTOR_CONSUMER }),
          inject: [DataSource],
        },
        {
          provide: ProjectorConsumer,
          useFactory: (
            kafka: Kafka,
            store: ProjectionStore,
            publisher: EventPublisher,
            metrics: ProjectorMetrics,
            log: Logger,
          ) =>
            new ProjectorConsumer(kafka, store, publisher, metrics, {
              groupId: config.groupId,
              topicPrefix: config.kafka.topicPrefix,
              consumerName: PROJECTOR_CONSUMER,
              sessionTimeoutMs: config.sessionTimeoutMs,
              logger: log,
            }),
          inject: [KAFKA, ProjectionStore, EventPublisher, ProjectorMetrics, LOGGER],
        },
        ConsumerLifecycle,
      ],
    };
  }
}
