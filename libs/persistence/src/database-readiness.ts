import type { ReadinessCheck } from '@cashflow/observability';
import type { DataSource } from 'typeorm';

/** Ready when PostgreSQL answers a query. */
export class DatabaseReadiness implements ReadinessCheck {
  readonly name = 'postgres';

  constructor(private readonly dataSource: DataSource) {}

  async check(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }
}
