import { ensureTopics } from '@cashflow/kafka';
import { runMigrations } from '@cashflow/persistence';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { cli } from './cli';
import { KAFKA_BROKERS, createTestDatabase, uniqueTopicPrefix } from './infra';
import { testKafka } from './kafka';
import { sandboxClient } from './plaid-sandbox';
import { freePort } from './ports';
import { startApp, waitForHealthy, type AppProcess } from './processes';
import { waitFor } from './wait-for';

/**
 * The whole system, each app its own process (built dist/), on the real broker and PostgreSQL:
 * the Plaid sandbox, the refresh worker, the webhook ingress and the projector, wired as
 * `npm start` wires them, on topics and a database of the test's own. With `fetcher` (its
 * settings), the report fetcher too; `env` goes to every app (tracing settings, say).
 */
export async function startSystem(
  options: { fetcher?: Record<string, string>; env?: Record<string, string> } = {},
) {
  const prefix = uniqueTopicPrefix();
  await ensureTopics(testKafka(prefix), { prefix, partitions: 3, replicationFactor: 1 });
  const db = await createTestDatabase();
  await runMigrations({ url: db.url, applicationName: 'test' });
  const sql = new Client({ connectionString: db.url });
  await sql.connect();
  const adminToken = randomBytes(24).toString('hex');
  const tokenKeys = `test-key:${randomBytes(32).toString('base64')}`;
  const readToken = randomBytes(24).toString('hex');
  const port = {
    sandbox: await freePort(),
    worker: await freePort(),
    ingress: await freePort(),
    ingressAdmin: await freePort(),
    projector: await freePort(),
    fetcher: await freePort(),
  };
  const common = {
    KAFKA_BROKERS: KAFKA_BROKERS.join(','),
    KAFKA_TOPIC_PREFIX: prefix,
    LOG_LEVEL: 'info',
    PLAID_ENV: 'local',
    PLAID_SANDBOX_PORT: String(port.sandbox),
    ...options.env,
  };
  const webhookUrl = `http://127.0.0.1:${port.ingress}/webhooks/plaid`;
  const apps: AppProcess[] = [];
  const byName = new Map<string, AppProcess>();
  const start = async (name: string, env: Record<string, string>, health: string) => {
    const app = startApp(name, { ...common, ...env });
    apps.push(app);
    byName.set(name, app);
    await waitForHealthy(app, health);
    return app;
  };
  try {
    await start(
      'plaid-sandbox',
      {
        PLAID_SANDBOX_REFRESH_LATENCY: 'fixed:100',
        PLAID_SANDBOX_EXTRACTION_DELAY_MS: '500',
        PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '1000',
        PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '100000',
      },
      `http://127.0.0.1:${port.sandbox}/health/ready`,
    );
    await start(
      'refresh-worker',
      {
        DATABASE_URL: db.url,
        REFRESH_WORKER_PORT: String(port.worker),
        TOKEN_ENCRYPTION_KEYS: tokenKeys,
        ADMIN_API_TOKENS: `tests:${adminToken}`,
        REFRESH_BACKOFF_BASE_MS: '50',
        REFRESH_BACKOFF_MAX_MS: '500',
        REFRESH_RETRY_POLL_MS: '50',
        // Plaid's two calls per Item, in a 3 s window instead of a minute: a burst for one
        // Item waits for the window and coalesces, without the test waiting a minute.
        PLAID_RATE_LIMIT_PER_ITEM: '2',
        PLAID_RATE_LIMIT_WINDOW_MS: '3000',
      },
      `http://127.0.0.1:${port.worker}/health/ready`,
    );
    await start(
      'webhook-ingress',
      {
        WEBHOOK_INGRESS_PORT: String(port.ingress),
        WEBHOOK_INGRESS_ADMIN_PORT: String(port.ingressAdmin),
      },
      `http://127.0.0.1:${port.ingressAdmin}/health/ready`,
    );
    await start(
      'projector',
      {
        DATABASE_URL: db.url,
        PROJECTOR_PORT: String(port.projector),
        PROJECTOR_API_TOKENS: `tests:${readToken}`,
      },
      `http://127.0.0.1:${port.projector}/health/ready`,
    );
    if (options.fetcher) {
      await start(
        'report-fetcher',
        {
          DATABASE_URL: db.url,
          REPORT_FETCHER_PORT: String(port.fetcher),
          TOKEN_ENCRYPTION_KEYS: tokenKeys,
          ADMIN_API_TOKENS: `tests:${adminToken}`,
          REPORT_FETCH_POLL_MS: '100',
          ...options.fetcher,
        },
        `http://127.0.0.1:${port.fetcher}/health/ready`,
      );
    }
  } catch (error) {
    await Promise.all(apps.map((a) => a.stop('SIGKILL')));
    throw error;
  }

  const cliEnv = {
    KAFKA_BROKERS: KAFKA_BROKERS.join(','),
    KAFKA_TOPIC_PREFIX: prefix,
    DATABASE_URL: db.url,
    REFRESH_WORKER_URL: `http://127.0.0.1:${port.worker}`,
    ADMIN_API_TOKEN: adminToken,
    PROJECTOR_URL: `http://127.0.0.1:${port.projector}`,
    PROJECTOR_API_TOKEN: readToken,
    // For `check`, which searches the topics and logs for the registered tokens.
    TOKEN_ENCRYPTION_KEYS: tokenKeys,
  };
  const sandbox = sandboxClient(`http://127.0.0.1:${port.sandbox}`);

  const system = {
    prefix,
    sandbox,
    webhookUrl,
    readToken,
    projectorUrl: cliEnv.PROJECTOR_URL,
    cli: (args: string[], stdin = '') => cli(args, cliEnv, stdin),
    async rows(query: string, params: unknown[] = []) {
      return (await sql.query(query, params)).rows as Record<string, unknown>[];
    },
    /** A sandbox Item whose webhooks reach the ingress, its token registered with the worker. */
    async item(input: Record<string, unknown> = {}) {
      const item = await sandbox.createItem({ webhook: webhookUrl, ...input });
      const added = await system.cli(['items', 'add', item.item_id], `${item.access_token}\n`);
      if (added.code !== 0) throw new Error(`items add: ${added.stderr}`);
      return item;
    },
    /** The Item's projected row once `ready` accepts it. */
    async itemState(itemId: string, ready: (row: Record<string, unknown>) => boolean) {
      return waitFor(
        `${itemId} in item_refresh_state`,
        async () => {
          const [row] = await system.rows('SELECT * FROM item_refresh_state WHERE item_id = $1', [
            itemId,
          ]);
          return row && ready(row) ? row : undefined;
        },
        60_000,
      );
    },
    logs: () => apps.map((a) => a.stdout()).join('\n'),
    /** An app's process (plaid-sandbox, refresh-worker, webhook-ingress, projector, report-fetcher). */
    app: (name: string) => byName.get(name)!,
    ingressUrl: `http://127.0.0.1:${port.ingress}`,
    ingressAdminUrl: `http://127.0.0.1:${port.ingressAdmin}`,
    workerUrl: `http://127.0.0.1:${port.worker}`,
    /**
     * `cashflow-refresh check` against this system: every request answered by now, reports
     * matched to the sandbox's deliveries, and the apps' logs (written to `logsDir`, beside
     * whatever else is there) searched for secrets.
     */
    check(logsDir: string, ...flags: string[]) {
      writeFileSync(join(logsDir, 'apps.log'), system.logs());
      const args = ['check', '--sandbox', sandbox.url, '--logs', logsDir, '--max-pending', '0'];
      return system.cli([...args, ...flags]);
    },
    async stop() {
      const codes = await Promise.all(apps.map((a) => a.stop('SIGTERM')));
      await sql.end();
      await db.drop();
      return codes;
    },
  };
  return system;
}

export type System = Awaited<ReturnType<typeof startSystem>>;
