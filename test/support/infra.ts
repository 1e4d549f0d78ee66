/**
 * Where integration and end-to-end tests find the real Kafka broker and PostgreSQL. `npm test`
 * (scripts/test.sh) starts both and exports these variables; the defaults are the addresses
 * scripts/local-infra.sh uses, so `npm run test:int` works while the local infra runs.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { freePort } from './ports';

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

/**
 * A Kafka broker of the test's own (scripts/local-infra.sh with its own state directory and
 * ports), for tests that stop and start the broker without disturbing every other test.
 */
export async function dedicatedKafka() {
  const root = join(__dirname, '../..');
  const dir = mkdtempSync(join(tmpdir(), 'cashflow-kafka-'));
  const port = await freePort();
  const env = {
    ...process.env,
    CASHFLOW_LOCAL_DIR: dir,
    CASHFLOW_CACHE_DIR: process.env.CASHFLOW_CACHE_DIR ?? join(root, '.cache'),
    LOCAL_KAFKA_PORT: String(port),
    LOCAL_KAFKA_CONTROLLER_PORT: String(await freePort()),
  };
  const infra = (command: 'start' | 'stop') => {
    const result = spawnSync('bash', [join(root, 'scripts/local-infra.sh'), command, 'kafka'], {
      env,
      encoding: 'utf8',
    });
    if (result.status !== 0) {
      throw new Error(`local-infra.sh ${command} kafka failed: ${result.stderr}`);
    }
  };
  infra('start');
  return {
    brokers: [`127.0.0.1:${port}`],
    start: () => infra('start'),
    stop: () => infra('stop'),
    remove() {
      infra('stop');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
