import { loggerInto } from './logs';
import {
  createEvent,
  decodeEvent,
  topicName,
  type RefreshAccepted,
  type RefreshFailed,
  type RefreshRequested,
} from '@cashflow/contracts';
import { EventPublisher, ensureTopics, type ParallelConsumer } from '@cashflow/kafka';
import { runMigrations } from '@cashflow/persistence';
import type { INestApplication } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { loadRefreshWorkerConfig } from '../../apps/refresh-worker/src/config';
import { startRefreshWorker } from '../../apps/refresh-worker/src/start-refresh-worker';
import { KAFKA_BROKERS, createTestDatabase, uniqueTopicPrefix, type TestDatabase } from './infra';
import { collect, testKafka } from './kafka';
import { startSandbox, type Sandbox } from './plaid-sandbox';
import type { ItemInput } from '../../apps/plaid-sandbox/src/items/item';
import { freePort } from './ports';

/** Fresh secrets per test run: an AES key and an admin bearer token, never real ones. */
export function workerSecrets() {
  const adminToken = randomBytes(24).toString('hex');
  return {
    adminToken,
    env: {
      TOKEN_ENCRYPTION_KEYS: `test-key:${randomBytes(32).toString('base64')}`,
      ADMIN_API_TOKENS: `tests:${adminToken}`,
      PROJECTOR_API_TOKENS: `tests:${adminToken}`,
    },
  };
}

export type Outcome = RefreshAccepted | RefreshFailed;

/** A RefreshRequested as an upstream publishes it. */
function requested(
  itemId: string,
  data: Partial<RefreshRequested['data']> = {},
  id: string = randomUUID(),
  metadata: { time?: string; source?: string } = {},
) {
  return createEvent(
    'RefreshRequested',
    { item_id: itemId, ...data },
    {
      id,
      source: metadata.source ?? 'urn:test:upstream',
      time: metadata.time ?? new Date().toISOString(),
    },
  );
}

/**
 * Everything the worker needs, real: topics with a unique prefix, a migrated database of its
 * own, the Plaid sandbox over HTTP, and a reader of the outcome topic.
 */
export async function workerWorld(sandboxEnv: Record<string, string> = {}) {
  const prefix = uniqueTopicPrefix();
  const kafka = testKafka(prefix);
  await ensureTopics(kafka, { prefix, partitions: 3, replicationFactor: 1 });
  const db: TestDatabase = await createTestDatabase();
  await runMigrations({ url: db.url, applicationName: 'test' });
  const sandbox: Sandbox = await startSandbox({
    PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '1000',
    PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '100000',
    ...sandboxEnv,
  });
  const publisher = new EventPublisher(kafka, prefix);
  await publisher.connect();
  const outcomes = await collect(kafka, [topicName('refreshOutcomes', prefix)]);
  const secrets = workerSecrets();
  const logLines: string[] = [];

  const decoded = () =>
    outcomes.received.flatMap((r) => {
      const result = decodeEvent(r.message);
      return result.ok ? [result.value as Outcome] : [];
    });

  const world = {
    prefix,
    kafka,
    db,
    sandbox,
    secrets,
    logLines,
    outcomes,
    /** Environment for a worker in this world; tests override what they exercise. */
    async workerEnv(overrides: Record<string, string> = {}): Promise<Record<string, string>> {
      return {
        KAFKA_BROKERS: KAFKA_BROKERS.join(','),
        KAFKA_TOPIC_PREFIX: prefix,
        DATABASE_URL: db.url,
        PLAID_ENV: 'local',
        PLAID_BASE_URL: sandbox.url,
        REFRESH_WORKER_PORT: String(await freePort()),
        REFRESH_BACKOFF_BASE_MS: '20',
        REFRESH_BACKOFF_MAX_MS: '200',
        REFRESH_RETRY_POLL_MS: '50',
        PLAID_RATE_LIMIT_PER_ITEM: '1000',
        PLAID_RATE_LIMIT_PER_CLIENT: '100000',
        SHUTDOWN_GRACE_MS: '2000',
        LOG_LEVEL: 'info',
        ...secrets.env,
        ...overrides,
      };
    },
    /** Publishes RefreshRequested events; returns them. */
    async request(
      itemId: string,
      data: Partial<RefreshRequested['data']> = {},
      id: string = randomUUID(),
      metadata: { time?: string; source?: string } = {},
    ) {
      const event = requested(itemId, data, id, metadata);
      await publisher.publish(event);
      return event;
    },
    /**
     * `count` requests for the Item in one send, so they reach Kafka at the same moment however
     * loaded the machine (requests sent one after another may be seconds apart there).
     */
    async burst(itemId: string, count: number, data: Partial<RefreshRequested['data']> = {}) {
      const events = Array.from({ length: count }, () => requested(itemId, data));
      await publisher.publish(...events);
      return events;
    },
    /** Waits for the outcome of a request and returns it. */
    async outcomeOf(requestId: string, timeoutMs = 30_000): Promise<Outcome> {
      await outcomes.until(
        1,
        (r) => r.message.headers?.ce_correlationid?.toString() === requestId,
        timeoutMs,
      );
      return decoded().find((e) => e.data.refresh_request_id === requestId)!;
    },
    /** Refresh calls of the Item that reached the sandbox. */
    async plaidCalls(itemId: string): Promise<number> {
      return (await sandbox.admin('GET', `/items/${encodeURIComponent(itemId)}`)).body.item
        .refresh_calls as number;
    },
    /** Every outcome message seen so far for a request (duplicates included). */
    outcomesFor(requestId: string): Outcome[] {
      return decoded().filter((e) => e.data.refresh_request_id === requestId);
    },
    async close() {
      // SHOW_WORKER_LOGS=1 prints what the workers logged at warn and above, for debugging.
      if (process.env.SHOW_WORKER_LOGS) {
        process.stderr.write(
          logLines.filter((l) => /"level":"(warn|error|fatal)"/.test(l)).join(''),
        );
      }
      await outcomes.stop();
      await publisher.disconnect();
      await sandbox.close();
      await db.drop();
    },
  };
  return world;
}
export type WorkerWorld = Awaited<ReturnType<typeof workerWorld>>;

/** A refresh worker running in this process, its logs captured as JSON lines. */
export async function startWorker(world: WorkerWorld, overrides: Record<string, string> = {}) {
  const env = await world.workerEnv(overrides);
  const config = loadRefreshWorkerConfig(env);
  const logger = loggerInto(world.logLines, 'refresh-worker', 'debug');
  let consumer: ParallelConsumer | undefined;
  const app: INestApplication = await startRefreshWorker(config, logger);
  const url = `http://127.0.0.1:${config.http.port}`;
  const auth = {
    authorization: `Bearer ${world.secrets.adminToken}`,
    'content-type': 'application/json',
  };
  return {
    app,
    url,
    config,
    /** PUT /items/:id/access-token with the test's admin token. */
    async registerToken(itemId: string, accessToken: string) {
      const response = await fetch(`${url}/items/${encodeURIComponent(itemId)}/access-token`, {
        method: 'PUT',
        headers: auth,
        body: JSON.stringify({ access_token: accessToken }),
      });
      if (response.status !== 200)
        throw new Error(`register token: ${response.status} ${await response.text()}`);
    },
    auth,
    /** A sandbox Item (no webhook unless given) whose token this worker has: its item_id. */
    async registeredItem(input: ItemInput = {}): Promise<string> {
      const created = await world.sandbox.createItem({ webhook: null, ...input });
      await this.registerToken(created.item_id, created.access_token);
      return created.item_id;
    },
    /** A metric of this worker's /metrics (the sum over its labels). */
    async metric(name: string): Promise<number> {
      const text = await (await fetch(`${url}/metrics`)).text();
      return text
        .split('\n')
        .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    },
    get consumer(): ParallelConsumer {
      consumer ??= app.getMicroservices()[0]!.unwrap<ParallelConsumer>();
      return consumer;
    },
    close: () => app.close(),
  };
}
export type Worker = Awaited<ReturnType<typeof startWorker>>;
