import { ConsumerReadiness, EventPublisher, KafkaModule, KafkaReadiness } from '@cashflow/kafka';
import { METRICS_REGISTRY, ObservabilityModule, type Logger } from '@cashflow/observability';
import type { Registry } from 'prom-client';
import { DatabaseReadiness, PersistenceModule } from '@cashflow/persistence';
import { PlaidClient } from '@cashflow/plaid-client';
import {
  Global,
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
import { systemClock } from './refresh/clock';
import { PlaidAttempt } from './refresh/plaid-attempt';
import { PlaidCallBudget, callBudget } from '@cashflow/plaid-client';
import { RetryRunner } from './refresh/retry-runner';
import { ClaimKeeper } from './refresh/claim-keeper';
import { HealthStore } from './health/health-store';
import { ItemHealthHandler } from './health/item-health.handler';
import { ItemHealthService } from './health/item-health.service';

export const WORKER_CONFIG = Symbol('WORKER_CONFIG');
const WORKER_LOGGER = Symbol('WORKER_LOGGER');

/**
 * How long a claim on a call in PostgreSQL lasts unless extended (every third of it while the
 * call is out): the calls of a worker that dies are taken over this long after its last renewal.
 */
const CLAIM_LEASE_MS = 15_000;

/** The worker's consumer: ready once it has joined its group, stopped first on shutdown. */
export class WorkerConsumer extends ConsumerReadiness {}

/** What the refresh service and the retry runner both make their calls with. */
const CALL_PARTS = [
  RefreshStore,
  PlaidAttempt,
  PlaidCallBudget,
  OutcomePublisher,
  RefreshMetrics,
  ClaimKeeper,
] as const;
type CallParts = [
  RefreshStore,
  PlaidAttempt,
  PlaidCallBudget,
  OutcomePublisher,
  RefreshMetrics,
  ClaimKeeper,
];

/** Global, so the observability module's readiness check can see the consumer. */
@Global()
@Module({ providers: [WorkerConsumer], exports: [WorkerConsumer] })
class WorkerConsumerModule {}

/** Starts and stops the worker's background loops: the outbox relay, parked retries, sweeping. */
class RefreshLifecycle
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: RefreshWorkerConfig,
    @Inject(WORKER_LOGGER) private readonly logger: Logger,
    private readonly consumer: WorkerConsumer,
    private readonly outcomes: OutcomePublisher,
    private readonly retries: RetryRunner,
    private readonly keeper: ClaimKeeper,
    private readonly refresh: RefreshService,
    private readonly plaid: PlaidClient,
    private readonly health: ItemHealthService,
  ) {}

  onApplicationBootstrap(): void {
    this.outcomes.startRelay(5000, 10_000);
    this.health.startRelay(5000, 10_000);
    this.keeper.start();
    this.retries.start();
    this.sweeper = setInterval(() => this.refresh.sweep(), 10_000);
  }

  /**
   * Stops fetching and claiming at once, then gives the calls under way (first calls and
   * retries alike) one grace period to finish, and hands back the claims of calls still out:
   * due at once for another worker, rather than after their lease.
   */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.sweeper);
    this.outcomes.stopRelay();
    this.health.stopRelay();
    await Promise.all([
      this.consumer.stop(),
      this.retries.stop(this.config.refresh.shutdownGraceMs),
    ]);
    this.keeper.stop();
    await this.keeper
      .releaseAll()
      .catch((error: unknown) =>
        this.logger.warn({ err: error }, 'handing back claims failed; their leases will expire'),
      );
  }

  async onApplicationShutdown(): Promise<void> {
    // The consumer and the retries have had their grace period: abandon what is still at Plaid
    // (its message is redelivered, its claim released) rather than wait out the response time-out.
    await this.plaid.destroy();
  }
}

/**
 * The refresh worker: RefreshRequested -> Plaid /cashflow_report/refresh -> outcome event; and
 * each Item's health, from Plaid's Item webhooks and its own outcomes (refusing refreshes of
 * Items that need their user).
 */
@Module({})
export class RefreshWorkerModule {
  static forRoot(config: RefreshWorkerConfig, logger: Logger): DynamicModule {
    // The gauges read the service once it exists.
    let service: RefreshService | undefined;
    const clock = systemClock;
    return {
      module: RefreshWorkerModule,
      imports: [
        WorkerConsumerModule,
        KafkaModule.forRoot({ ...config.kafka, logger }),
        PersistenceModule.forRoot({ ...config.database, poolSize: 20 }),
        ObservabilityModule.forRoot({
          service: SERVICE,
          logger,
          readiness: [KafkaReadiness, DatabaseReadiness, WorkerConsumer],
        }),
      ],
      controllers: [RefreshRequestedHandler, ItemHealthHandler, AccessTokensController],
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
          useValue: PlaidClient.fromSettings(config.plaid, config.refresh.maxInFlight),
        },
        {
          provide: RefreshStore,
          useFactory: (db: DataSource) => new RefreshStore(db),
          inject: [DataSource],
        },
        {
          provide: HealthStore,
          useFactory: (db: DataSource) => new HealthStore(db),
          inject: [DataSource],
        },
        {
          provide: ItemHealthService,
          useFactory: (store: HealthStore, publisher: EventPublisher, registry: Registry) =>
            new ItemHealthService(
              store,
              publisher,
              logger.child({ component: 'item-health' }),
              registry,
            ),
          inject: [HealthStore, EventPublisher, METRICS_REGISTRY],
        },
        {
          provide: RefreshMetrics,
          useFactory: (registry: Registry, store: RefreshStore) =>
            new RefreshMetrics(
              registry,
              () => service?.inFlight ?? 0,
              () => service?.trackedItems ?? 0,
              () => store.waiting(),
            ),
          inject: [METRICS_REGISTRY, RefreshStore],
        },
        {
          provide: OutcomePublisher,
          useFactory: (store: RefreshStore, publisher: EventPublisher, metrics: RefreshMetrics) =>
            new OutcomePublisher(store, publisher, logger, metrics),
          inject: [RefreshStore, EventPublisher, RefreshMetrics],
        },
        {
          provide: PlaidCallBudget,
          useFactory: (db: DataSource) =>
            callBudget({
              scope: config.refresh.perClientScope,
              db,
              name: 'cashflow_report/refresh',
              rate: config.refresh.perClient,
              now: () => clock.now(),
              onError: (error) =>
                logger.warn({ err: error }, 'the shared Plaid budget could not be asked; retrying'),
            }),
          inject: [DataSource],
        },
        {
          provide: PlaidAttempt,
          useFactory: (vault: TokenVault, plaid: PlaidClient, metrics: RefreshMetrics) =>
            new PlaidAttempt(vault, plaid, config.refresh, clock, metrics),
          inject: [TokenVault, PlaidClient, RefreshMetrics],
        },
        {
          provide: RefreshService,
          useFactory: (...[store, attempt, limiter, outcomes, metrics, keeper]: CallParts) =>
            (service = new RefreshService(
              store,
              attempt,
              limiter,
              keeper,
              outcomes,
              config.refresh.perItem,
              config.refresh.refuseItemsNeedingUser,
              clock,
              logger,
              metrics,
            )),
          inject: [...CALL_PARTS],
        },
        {
          provide: RetryRunner,
          useFactory: (...[store, attempt, limiter, outcomes, metrics, keeper]: CallParts) =>
            new RetryRunner(
              store,
              attempt,
              limiter,
              keeper,
              outcomes,
              {
                pollMs: config.refresh.retryPollMs,
                batch: 50,
                spacingMs: config.refresh.perItem.windowMs / config.refresh.perItem.limit,
              },
              clock,
              logger,
              metrics,
            ),
          inject: [...CALL_PARTS],
        },
        {
          provide: ClaimKeeper,
          useFactory: (store: RefreshStore) =>
            new ClaimKeeper(store, CLAIM_LEASE_MS, clock, logger),
          inject: [RefreshStore],
        },
        RefreshLifecycle,
      ],
    };
  }
}
