import {
  DATABASE_URL,
  KAFKA_BROKERS,
  createTestDatabase,
  uniqueTopicPrefix,
  type TestDatabase,
} from '../support/infra';
import { freePort } from '../support/ports';
import { startApp, waitForHealthy, type AppProcess } from '../support/processes';
import { workerSecrets } from '../support/refresh-worker';
import { testKafka } from '../support/kafka';
import { ensureTopics } from '@cashflow/kafka';
import { runMigrations } from '@cashflow/persistence';

/** Each app as its own process: starts, validates config, connects, reports health, stops cleanly. */
describe('app shells as processes', () => {
  let db: TestDatabase;
  const running: AppProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    await runMigrations({ url: db.url, applicationName: 'test' });
  });
  afterAll(async () => {
    await Promise.all(running.map((app) => app.stop('SIGKILL')));
    await db.drop();
  });

  async function baseEnv() {
    return {
      KAFKA_BROKERS: KAFKA_BROKERS.join(','),
      KAFKA_TOPIC_PREFIX: uniqueTopicPrefix(),
      DATABASE_URL: db.url,
      LOG_LEVEL: 'info',
      REFRESH_WORKER_PORT: String(await freePort()),
      WEBHOOK_INGRESS_PORT: String(await freePort()),
      WEBHOOK_INGRESS_ADMIN_PORT: String(await freePort()),
      PROJECTOR_PORT: String(await freePort()),
      PLAID_SANDBOX_PORT: String(await freePort()),
      ...workerSecrets().env,
    };
  }

  const apps = [
    {
      name: 'refresh-worker',
      port: 'REFRESH_WORKER_PORT',
      checks: ['kafka', 'kafka-consumer', 'postgres'],
    },
    { name: 'webhook-ingress', port: 'WEBHOOK_INGRESS_ADMIN_PORT', checks: ['kafka'] },
    { name: 'projector', port: 'PROJECTOR_PORT', checks: ['kafka', 'postgres'] },
    { name: 'plaid-sandbox', port: 'PLAID_SANDBOX_PORT', checks: [] },
  ] as const;

  it.each(apps)(
    '$name reports ready, serves metrics and exits 0 on SIGTERM',
    async ({ name, port, checks }) => {
      const env = await baseEnv();
      const prefix = env.KAFKA_TOPIC_PREFIX;
      await ensureTopics(testKafka(prefix), { prefix, partitions: 1, replicationFactor: 1 });
      const app = startApp(name, env);
      running.push(app);
      const base = `http://127.0.0.1:${env[port]}`;

      const ready = (await waitForHealthy(app, `${base}/health/ready`)) as {
        status: string;
        info: object;
      };
      expect(ready.status).toBe('ok');
      expect(Object.keys(ready.info).sort()).toEqual([...checks].sort());
      expect((await fetch(`${base}/health/live`)).status).toBe(200);

      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await metrics.text()).toContain(
        `cashflow_process_cpu_user_seconds_total{service="${name}"}`,
      );

      expect(await app.stop('SIGTERM')).toBe(0);
      const lines = app
        .stdout()
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { service: string; msg: string });
      expect(lines.every((line) => line.service === name)).toBe(true);
      expect(lines.map((l) => l.msg)).toEqual(
        expect.arrayContaining([`${name} started`, `${name} stopping`]),
      );
    },
  );

  it('fails start-up naming the command to run when its topics do not exist', async () => {
    const app = startApp('refresh-worker', await baseEnv());
    running.push(app);
    expect(await app.exited).toBe(1);
    expect(app.stdout()).toContain('missing Kafka topics');
    expect(app.stdout()).toContain('cashflow-refresh topics create');
  });

  it('the projector fails start-up naming the command to run when its tables do not exist', async () => {
    const empty = await createTestDatabase();
    try {
      const env = await baseEnv();
      const prefix = env.KAFKA_TOPIC_PREFIX;
      await ensureTopics(testKafka(prefix), { prefix, partitions: 1, replicationFactor: 1 });
      const app = startApp('projector', { ...env, DATABASE_URL: empty.url });
      running.push(app);
      expect(await app.exited).toBe(1);
      expect(app.stdout()).toContain('run `cashflow-refresh migrate` first');
    } finally {
      await empty.drop();
    }
  });

  it('stops start-up with exit status 78 and names each missing or invalid variable', async () => {
    const app = startApp('projector', { KAFKA_BROKERS: 'not-a-broker', LOG_LEVEL: 'info' });
    running.push(app);
    expect(await app.exited).toBe(78);
    expect(app.stderr()).toContain('Invalid configuration for projector');
    expect(app.stderr()).toContain('KAFKA_BROKERS: each broker must be host:port');
    expect(app.stderr()).toContain('DATABASE_URL: required');
  });

  it('fails start-up with a clear error when PostgreSQL cannot be reached', async () => {
    const env = await baseEnv();
    const unreachable = new URL(DATABASE_URL);
    unreachable.port = String(await freePort());
    const app = startApp('projector', { ...env, DATABASE_URL: unreachable.toString() });
    running.push(app);
    expect(await app.exited).toBe(1);
    const fatal =
      app
        .stdout()
        .split('\n')
        .find((line) => line.includes('"level":"fatal"')) ?? '';
    expect(fatal).toContain('projector failed to start');
    expect(fatal).toContain('ECONNREFUSED');
    expect(fatal).not.toContain('cashflow:cashflow@');
  });
});
