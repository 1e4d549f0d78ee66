import { TokenCipher, TokenVault } from '@cashflow/access-tokens';
import { ConsumerReadiness, EventPublisher, KafkaModule, KafkaReadiness } from '@cashflow/kafka';
import {
  BEARER_TOKENS,
  BearerAuthGuard,
  METRICS_REGISTRY,
  ObservabilityModule,
  type Logger,
} from '@cashflow/observability';
import { DatabaseReadiness, PersistenceModule } from '@cashflow/persistence';
import { PlaidClient, callBudget } from '@cashflow/plaid-client';
import {
  Global,
  Inject,
  Module,
  type BeforeApplicationShutdown,
  type DynamicModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { ReportFetchController } from './admin/report-fetch.controller';
import { SERVICE, type ReportFetcherConfig } from './config';
import { FetchMetrics, plaidCallMetrics } from './fetch/fetch-metrics';
import { FetchPublisher } from './fetch/fetch-publisher';
import { FetchRunner } from './fetch/fetch-runner';
import { FetchStateStore } from './fetch/fetch-state-store';
import { ReportEventsHandler } from './fetch/report-events.handler';
import { ReportFetch } from './fetch/report-fetch';
import { ReportPoll } from './fetch/report-poll';
import { SnapshotStore } from './fetch/snapshot-store';

export const FETCHER_CONFIG = Symbol('FETCHER_CONFIG');

/** How long a fetch's claim lasts unless renewed: a dead fetcher's Items move on after this. */
const CLAIM_LEASE_MS = 15_000;

/** The fetcher's consumer: ready once it has joined its group, stopped first on shutdown. */
export class FetcherConsumer extends ConsumerReadiness {}

@Global()
@Module({ providers: [FetcherConsumer], exports: [FetcherConsumer] })
class FetcherConsumerModule {}

/** Starts the runner; on shutdown stops consuming and claiming, then waits for fetches under way. */
class FetcherLifecycle
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  constructor(
    @Inject(FETCHER_CONFIG) private readonly config: ReportFetcherConfig,
    private readonly consumer: FetcherConsumer,
    private readonly runner: FetchRunner,
    private readonly plaid: PlaidClient,
  ) {}

  onApplicationBootstrap(): void {
    this.runner.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all([this.consumer.stop(), this.runner.stop(this.config.fetch.shutdownGraceMs)]);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.plaid.destroy();
  }
}

/** The report fetcher: ReportReady -> every page of /cashflow_report/get -> stored, ReportFetched. */
@Module({})
export class ReportFetcherModule {
  static forRoot(config: ReportFetcherConfig, logger: Logger): DynamicModule {
    const now = () => Date.now();
    // The in-flight gauge reads the runner once it exists.
    let runner: FetchRunner | undefined;
    return {
      module: ReportFetcherModule,
      imports: [
        FetcherConsumerModule,
        KafkaModule.forRoot({ ...config.kafka, logger }),
        // A fetch holds one connection for its transaction; the rest is for events and claims.
        PersistenceModule.forRoot({ ...config.database, poolSize: config.fetch.concurrency + 6 }),
        ObservabilityModule.forRoot({
          service: SERVICE,
          logger,
          readiness: [KafkaReadiness, DatabaseReadiness, FetcherConsumer],
        }),
      ],
      controllers: [ReportEventsHandler, ReportFetchController],
      providers: [
        { provide: FETCHER_CONFIG, useValue: config },
        { provide: BEARER_TOKENS, useValue: config.adminTokens },
        BearerAuthGuard,
        {
          provide: TokenVault,
          useFactory: (db: DataSource) =>
            new TokenVault(
              db,
              new TokenCipher(config.tokens.keys, [...config.tokens.keys.keys()][0]!),
            ),
          inject: [DataSource],
        },
        {
          provide: PlaidClient,
          useFactory: (registry: Registry) =>
            PlaidClient.fromSettings(
              config.plaid,
              config.fetch.concurrency * 2,
              plaidCallMetrics(registry),
            ),
          inject: [METRICS_REGISTRY],
        },
        {
          provide: FetchStateStore,
          useFactory: (db: DataSource) => new FetchStateStore(db, config.poll),
          inject: [DataSource],
        },
        { provide: SnapshotStore, useValue: new SnapshotStore() },
        {
          provide: ReportFetch,
          useFactory: (
            db: DataSource,
            states: FetchStateStore,
            snapshots: SnapshotStore,
            plaid: PlaidClient,
          ) => new ReportFetch(db, states, snapshots, plaid, config.fetch, now),
          inject: [DataSource, FetchStateStore, SnapshotStore, PlaidClient],
        },
        {
          provide: ReportPoll,
          useFactory: (db: DataSource, states: FetchStateStore, plaid: PlaidClient) =>
            new ReportPoll(
              db,
              states,
              plaid,
              callBudget({
                scope: config.pollRateLimitScope,
                db,
                name: 'cashflow_report/get',
                rate: config.pollRateLimit,
                now,
                onError: (error) =>
                  logger.warn(
                    { err: error },
                    'the shared Plaid budget could not be asked; retrying',
                  ),
              }),
              config.poll,
              now,
            ),
          inject: [DataSource, FetchStateStore, PlaidClient],
        },
        {
          provide: FetchPublisher,
          useFactory: (db: DataSource, publisher: EventPublisher) =>
            new FetchPublisher(db, publisher),
          inject: [DataSource, EventPublisher],
        },
        {
          provide: FetchRunner,
          useFactory: (
            db: DataSource,
            states: FetchStateStore,
            fetch: ReportFetch,
            poll: ReportPoll,
            publisher: FetchPublisher,
            vault: TokenVault,
            registry: Registry,
          ) =>
            (runner = new FetchRunner(
              db,
              states,
              fetch,
              poll,
              publisher,
              vault,
              { ...config.fetch, leaseMs: CLAIM_LEASE_MS },
              now,
              logger.child({ component: 'fetch-runner' }),
              new FetchMetrics(registry, () => runner?.inFlight ?? 0),
            )),
          inject: [
            DataSource,
            FetchStateStore,
            ReportFetch,
            ReportPoll,
            FetchPublisher,
            TokenVault,
            METRICS_REGISTRY,
          ],
        },
        FetcherLifecycle,
      ],
    };
  }
}
