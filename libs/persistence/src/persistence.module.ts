import { Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DatabaseReadiness } from './database-readiness';
import { createDataSource, type DatabaseOptions } from './data-source';

/**
 * Provides an initialized DataSource (start-up fails if PostgreSQL is unreachable) and its
 * readiness check; closes the pool on shutdown. Tests hand in their own database URL.
 */
@Module({})
export class PersistenceModule implements OnApplicationShutdown {
  constructor(private readonly dataSource: DataSource) {}

  static forRoot(options: DatabaseOptions): DynamicModule {
    return {
      module: PersistenceModule,
      global: true,
      providers: [
        { provide: DataSource, useFactory: () => createDataSource(options).initialize() },
        {
          provide: DatabaseReadiness,
          useFactory: (ds: DataSource) => new DatabaseReadiness(ds),
          inject: [DataSource],
        },
      ],
      exports: [DataSource, DatabaseReadiness],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
