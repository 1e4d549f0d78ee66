/**
 * Where integration and end-to-end tests find the real Kafka broker and PostgreSQL. `npm test`
 * (scripts/test.sh) starts both and exports these variables; the defaults are the addresses
 * scripts/local-infra.sh uses, so `npm run test:int` works while the local infra runs.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

export const KAFKA_BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');
export const DATABASE_URL =
  process.env.DATABASE_URL ?? 'postgres://cashflow:cashflow@127.0.0.1:15432/cashflow';

export function uniqueSuffix(): string {
  return randomBytes(4).toString('hex');
}

/** A topic prefix no other test uses, so tests never see each other's events. */
export function uniqueTopicPrefix(): string {
  return `test-${uniqueSuffix()}.`;
}

export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database on the test PostgreSQL; `drop` removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `cashflow_test_${uniqueSuffix()}`;
  const admin = new Client({ connectionString: DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new Client({ connectionString: DATABASE_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
