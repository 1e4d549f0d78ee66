import { EventPublisher, KafkaModule, KafkaReadiness } from '@cashflow/kafka';
import { METRICS_REGISTRY, ObservabilityModule, type Logger } from '@cashflow/observability';
import type { Registry } from 'prom-client';
import { DatabaseReadiness, PersistenceModule } from '@cashflow/persistence';
import { PlaidClient } from '@cashflow/plaid-client';
import {
  Inject,
  Module,
  type BeforeApplicationShutdown,
  type DynamicModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AccessTokensController } from './access-tokens/access-tokens.controller';
import { BEARER_TOKENS, BearerAuthGuard } from '@cashflow/observability';
import { TokenCipher, TokenVault } from '@cashflow/access-tokens';
import { SERVICE, type RefreshWorkerConfig } from './config';
import { OutcomePublisher } from './refresh/outcome-publisher';
import { RefreshMetrics } from './refresh/refresh-metrics';
import { RefreshRequestedHandler } from './refresh/refresh-requested.handler';
import { RefreshStore } from './refresh/refresh-store';
import { RefreshService } from './refresh/refresh.service';
import { RetryRunner } from './refresh/retry-runner';

export const WORKER_CONFIG = Symbol('WORKER_CONFIG');
const WORKER_LOGGER = Symbol('WORKER_LOGGER');

/** Starts and stops the worker's background loops: the outbox relay, parked retries, sweeping. */
class RefreshLifecycle
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: RefreshWorkerConfig,
    private readonly outcomes: OutcomePublisher,
    private readonly retries: RetryRunner,
    private readonly refresh: RefreshService,
    private readonly plaid: PlaidClient,
  ) {}

  onApplicationBootstrap(): void {
    this.outcomes.startRelay(5000, 10_000);
    this.retries.start();
    this.sweeper = setInterval(() => this.refresh.sweep(), 10_000);
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.sweeper);
    this.outcomes.stopRelay();
    await this.retries.stop(this.config.refresh.shutdownGraceMs);
  }

  async onApplicationShutdown(): Promise<void> {
    // The consumer and the retries have had their grace period: abandon what is still at Plaid
    // (its message is redelivered, its claim released) rather than wait out the response time-out.
    await this.plaid.destroy();
  }
}

/** The refresh worker: RefreshRequested -> Plaid /cashflow_report/refresh -> outcome event. */
@Module({})
export class RefreshWorkerModule {
  static forRoot(config: RefreshWorkerConfig, logger: Logger): DynamicModule {
    // The gauges read the service once it exists.
    let service: RefreshService | undefined;
    return {
      module: RefreshWorkerModule,
      imports: [
        KafkaModule.forRoot({ ...config.kafka, logger }),
        PersistenceModule.forRoot({ ...config.database, poolSize: 20 }),
        ObservabilityModule.forRoot({
          service: SERVICE,
          logger,
          readiness: [KafkaReadiness, DatabaseReadiness],
        }),
      ],
      controllers: [RefreshRequestedHandler, AccessTokensController],
      providers: [
        { provide: WORKER_CONFIG, useValue: config },
        { provide: WORKER_LOGGER, useValue: logger },
        { provide: BEARER_TOKENS, useValue: config.adminTokens },
        BearerAuthGuard,
        {
          provide: TokenVault,
          useFactory: (db: DataSource) =>
            new TokenVault(db, new TokenCipher(config.tokens.keys, config.tokens.currentKeyId)),
          inject: [DataSource],
        },
        {
          provide: PlaidClient,
          useValue: new PlaidClient({
            baseUrl: config.plaid.baseUrl,
            clientId: config.plaid.clientId,
            secret: config.plaid.secret,
            connectTimeoutMs: config.plaid.connectTimeoutMs,
            headersTimeoutMs: config.plaid.responseTimeoutMs,
            bodyTimeoutMs: config.plaid.responseTimeoutMs,
            connections: config.refresh.maxInFlight,
          }),
        },
        {
          provide: RefreshStore,
          useFactory: (db: DataSource) => new RefreshStore(db),
          inject: [DataSource],
        },
        {
          provide: RefreshMetrics,
          useFactory: (registry: Registry) =>
            new RefreshMetrics(
              registry,
              () => service?.inFlight ?? 0,
              () => service?.trackedItems ?? 0,
            ),
          inject: [METRICS_REGISTRY],
        },
        {
          provide: OutcomePublisher,
          useFactory: (store: RefreshStore, publisher: EventPublisher, metrics: RefreshMetrics) =>
            new OutcomePublisher(store, publisher, logger, metrics),
          inject: [RefreshStore, EventPublisher, RefreshMetrics],
        },
        {
          provide: RefreshService,
          useFactory: (
            store: RefreshStore,
            vault: TokenVault,
            plaid: PlaidClient,
            outcomes: OutcomePublisher,
            metrics: RefreshMetrics,
          ) =>
            (service = new RefreshService(
              store,
              vault,
              plaid,
              outcomes,
              config.refresh,
              logger,
              metrics,
            )),
          inject: [RefreshStore, TokenVault, PlaidClient, OutcomePublisher, RefreshMetrics],
        },
        {
          provide: RetryRunner,
          useFactory: (store: RefreshStore, refresh: RefreshService, outcomes: OutcomePublisher) =>
            new RetryRunner(
              store,
              refresh,
              outcomes,
              {
                pollMs: config.refresh.retryPollMs,
                leaseMs: config.plaid.responseTimeoutMs + config.plaid.connectTimeoutMs + 30_000,
                batch: 50,
              },
              logger,
            ),
          inject: [RefreshStore, RefreshService, OutcomePublisher],
        },
        RefreshLifecycle,
      ],
    };
  }
}
