import { MIGRATIONS, ROLE_GRANTS } from '@cashflow/migrations';
import { DataSource } from 'typeorm';

export interface DatabaseOptions {
  readonly url: string;
  /** Shown in pg_stat_activity, so ops can tell connections apart. */
  readonly applicationName: string;
  readonly poolSize?: number;
}

/** A TypeORM data source for the project's schema. Schema changes come only from migrations. */
export function createDataSource(options: DatabaseOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: options.url,
    applicationName: options.applicationName,
    synchronize: false,
    migrationsRun: false,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    logging: false,
    extra: { max: options.poolSize ?? 10, connectionTimeoutMillis: 5000 },
  });
}

export interface MigrationReport {
  readonly applied: string[];
}

/** Applies pending migrations, each in its own transaction. Safe to run again. */
export async function runMigrations(options: DatabaseOptions): Promise<MigrationReport> {
  const dataSource = createDataSource({ ...options, poolSize: 1 });
  await dataSource.initialize();
  try {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    for (const grant of ROLE_GRANTS) await grant(dataSource);
    return { applied: applied.map((m) => m.name) };
  } finally {
    await dataSource.destroy();
  }
}
