import { ensureTopics } from '@cashflow/kafka';
import { runMigrations } from '@cashflow/persistence';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { cli } from '../support/cli';
import { testKafka } from '../support/kafka';
import { sandboxClient } from '../support/plaid-sandbox';
import { freePort } from '../support/ports';
import { REPO_ROOT, startApp, waitForHealthy, type AppProcess } from '../support/processes';
import { webhookBalancer, webhookProxy } from './webhook-proxy';

/**
 * A Kafka cluster (one node, or three replicating ones) and a PostgreSQL cluster of the
 * scenarios' own (scripts/local-infra.sh in a private directory, on free ports), so a scenario
 * can stop them mid-load without touching the broker and database every other test uses.
 */
export async function dedicatedInfra(options: { kafkaNodes?: 1 | 3 } = {}) {
  const nodes = options.kafkaNodes ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'cashflow-faults-'));
  // PostgreSQL runs as the postgres user, which must be able to enter the directory.
  chmodSync(dir, 0o755);
  const ports = {
    kafka: await Promise.all(Array.from({ length: nodes }, () => freePort())),
    controller: await Promise.all(Array.from({ length: nodes }, () => freePort())),
    postgres: await freePort(),
  };
  const env = {
    ...process.env,
    CASHFLOW_LOCAL_DIR: dir,
    CASHFLOW_CACHE_DIR: process.env.CASHFLOW_CACHE_DIR ?? join(REPO_ROOT, '.cache'),
    LOCAL_KAFKA_NODES: String(nodes),
    LOCAL_KAFKA_PORTS: ports.kafka.join(','),
    LOCAL_KAFKA_CONTROLLER_PORTS: ports.controller.join(','),
    LOCAL_PG_PORT: String(ports.postgres),
  };
  /**
   * `kafka` is every node; `kafka-N` node N alone; `kill` is SIGKILL (a crash). Asynchronous on
   * purpose: the apps log to pipes this process reads, and pino writes synchronously, so while
   * this process sat in spawnSync (a broker's start takes seconds) a full pipe stalled every app's
   * event loop: workers read Plaid's answers a second late, and the load stopped too.
   */
  const infra = (command: 'start' | 'stop' | 'kill', service: string) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn('bash', [join(REPO_ROOT, 'scripts/local-infra.sh'), command, service], {
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0
          ? resolve()
          : reject(new Error(`local-infra.sh ${command} ${service} failed: ${stderr}`)),
      );
    });
  /** For the last clean-up, when no app is left to stall. */
  const infraNow = (command: 'stop', service: string) =>
    spawnSync('bash', [join(REPO_ROOT, 'scripts/local-infra.sh'), command, service], { env });
  await infra('start', 'kafka');
  await infra('start', 'postgres');
  const databaseUrl = `postgres://cashflow:cashflow@127.0.0.1:${ports.postgres}/cashflow`;
  return {
    brokers: ports.kafka.map((port) => `127.0.0.1:${port}`),
    /** Every topic's replicas: one per node (min.insync.replicas is then 2 with three). */
    replicationFactor: nodes,
    databaseUrl,
    start: (service: 'kafka' | 'postgres' | `kafka-${number}`) => infra('start', service),
    stop: (service: 'kafka' | 'postgres' | `kafka-${number}`) => infra('stop', service),
    kill: (service: `kafka-${number}`) => infra('kill', service),
    /** A fresh database on the dedicated cluster, migrated. */
    async database(name: string) {
      const admin = new Client({ connectionString: databaseUrl });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      const url = new URL(databaseUrl);
      url.pathname = `/${name}`;
      await runMigrations({ url: url.toString(), applicationName: 'faults' });
      return url.toString();
    },
    remove() {
      infraNow('stop', 'kafka');
      infraNow('stop', 'postgres');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type DedicatedInfra = Awaited<ReturnType<typeof dedicatedInfra>>;

/** Env for one app; a scenario overrides what it needs. */
export interface SystemSettings {
  readonly sandbox?: Record<string, string>;
  readonly worker?: Record<string, string>;
  readonly workers?: number;
  /** Processes of the other apps, each in its group (one by default); webhooks are balanced. */
  readonly replicas?: {
    readonly ingress?: number;
    readonly projector?: number;
    readonly fetcher?: number;
  };
  readonly fetcher?: Record<string, string>;
  /** Webhooks reach the ingress through a proxy that can lose its answers (webhook-proxy.ts). */
  readonly webhookProxy?: boolean;
}

/** The sandbox stretches every delay by this; latencies below are written in real time. */
export const TIME_SCALE = 0.1;

/** The report fetcher's instance name (one process, its own consumer group). */
export const FETCHER = 'report-fetcher';

/**
 * The whole system as separate processes on the dedicated infra, on topics and a database of
 * its own: the sandbox, one or more refresh workers (one consumer group), the report fetcher,
 * the ingress and the projector. Any app can be killed and started again with the same
 * settings; every incarnation's output is kept for the secret search.
 */
export async function faultSystem(infra: DedicatedInfra, name: string, settings: SystemSettings) {
  const prefix = `${name}.`;
  const kafka = testKafka(prefix, infra.brokers);
  await ensureTopics(kafka, { prefix, partitions: 6, replicationFactor: infra.replicationFactor });
  const databaseUrl = await infra.database(name.replace(/[^a-z0-9_]/g, '_'));
  const adminToken = randomBytes(24).toString('hex');
  const readToken = randomBytes(24).toString('hex');
  const tokenKeys = `faults:${randomBytes(32).toString('base64')}`;
  const ports = (count: number | undefined) =>
    Promise.all(Array.from({ length: count ?? 1 }, () => freePort()));
  const port = {
    sandbox: await freePort(),
    ingress: await ports(settings.replicas?.ingress),
    ingressAdmin: await ports(settings.replicas?.ingress),
    projector: await ports(settings.replicas?.projector),
    fetcher: await ports(settings.replicas?.fetcher),
    workers: await ports(settings.workers),
  };
  const common = {
    KAFKA_BROKERS: infra.brokers.join(','),
    KAFKA_TOPIC_PREFIX: prefix,
    LOG_LEVEL: 'info',
    PLAID_ENV: 'local',
    PLAID_SANDBOX_PORT: String(port.sandbox),
  };
  const env: Record<string, Record<string, string>> = {
    'plaid-sandbox': {
      PLAID_SANDBOX_TIME_SCALE: String(TIME_SCALE),
      // The fetcher matches data to refreshes by time (rule 1 of item-fetches: data no older than
      // the acceptance; README, "What matching by time cannot tell apart"). The data is ready 2 s
      // (real) after Plaid answers, and every call takes at least 2.5 s: an Item's next refresh
      // is accepted only after the previous refresh's data was made, and a worker would have to
      // read an answer 2 s late (a stalled process) to stamp its acceptance after its data.
      PLAID_SANDBOX_REFRESH_LATENCY: `uniform:${2500 / TIME_SCALE}-${5000 / TIME_SCALE}`,
      PLAID_SANDBOX_EXTRACTION_DELAY_MS: String(2000 / TIME_SCALE),
      PLAID_SANDBOX_WEBHOOK_TIMEOUT_MS: '5000',
      PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '1000',
      PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '1000000',
      ...settings.sandbox,
    },
    'refresh-worker': {
      DATABASE_URL: databaseUrl,
      TOKEN_ENCRYPTION_KEYS: tokenKeys,
      ADMIN_API_TOKENS: `faults:${adminToken}`,
      REFRESH_BACKOFF_BASE_MS: '200',
      REFRESH_BACKOFF_MAX_MS: '2000',
      REFRESH_RETRY_POLL_MS: '200',
      // Plaid's pace, two calls per Item a minute, on the sandbox's time scale (as its latency
      // is): later requests for a busy Item coalesce.
      PLAID_RATE_LIMIT_PER_ITEM: '2',
      PLAID_RATE_LIMIT_PER_CLIENT: '1000000',
      PLAID_RATE_LIMIT_WINDOW_MS: String(61_000 * TIME_SCALE),
      SHUTDOWN_GRACE_MS: '5000',
      ...settings.worker,
    },
    'webhook-ingress': {},
    projector: {
      DATABASE_URL: databaseUrl,
      PROJECTOR_API_TOKENS: `faults:${readToken}`,
    },
    [FETCHER]: {
      DATABASE_URL: databaseUrl,
      // The worker's keys: the fetcher reads the tokens the worker's vault holds.
      TOKEN_ENCRYPTION_KEYS: tokenKeys,
      ADMIN_API_TOKENS: `faults:${adminToken}`,
      REPORT_FETCH_POLL_MS: '200',
      REPORT_FETCH_BACKOFF_BASE_MS: '200',
      REPORT_FETCH_BACKOFF_MAX_MS: '2000',
      // Polls for overdue reports keep to the workers' Plaid budget, on the same time scale.
      PLAID_RATE_LIMIT_PER_ITEM: '2',
      PLAID_RATE_LIMIT_PER_CLIENT: '1000000',
      PLAID_RATE_LIMIT_WINDOW_MS: String(61_000 * TIME_SCALE),
      SHUTDOWN_GRACE_MS: '5000',
      ...settings.fetcher,
    },
  };

  const incarnations: AppProcess[] = [];
  const running = new Map<string, AppProcess>();
  /** `refresh-worker#1` is the second worker; an app's first process may drop the `#0`. */
  const indexOf = (instance: string) => Number(instance.split('#')[1] ?? 0);
  const named = (app: string, count: number, plainFirst: boolean) =>
    Array.from({ length: count }, (_, i) => (i === 0 && plainFirst ? app : `${app}#${i}`));
  const workerUrl = (instance: string) => `http://127.0.0.1:${port.workers[indexOf(instance)]}`;
  const workerNames = named('refresh-worker', port.workers.length, false);
  const instances = {
    ingress: named('webhook-ingress', port.ingress.length, true),
    projector: named('projector', port.projector.length, true),
    fetcher: named(FETCHER, port.fetcher.length, true),
  };
  /** Each process's own ports, and where it answers readiness. */
  const own = (instance: string): { env: Record<string, string>; ready: string } => {
    const app = instance.split('#')[0]!;
    const i = indexOf(instance);
    const ready = (p: number) => `http://127.0.0.1:${p}/health/ready`;
    switch (app) {
      case 'plaid-sandbox':
        return { env: {}, ready: ready(port.sandbox) };
      case 'webhook-ingress':
        return {
          env: {
            WEBHOOK_INGRESS_PORT: String(port.ingress[i]),
            WEBHOOK_INGRESS_ADMIN_PORT: String(port.ingressAdmin[i]),
          },
          ready: ready(port.ingressAdmin[i]!),
        };
      case 'projector':
        return {
          env: { PROJECTOR_PORT: String(port.projector[i]) },
          ready: ready(port.projector[i]!),
        };
      case FETCHER:
        return {
          env: { REPORT_FETCHER_PORT: String(port.fetcher[i]) },
          ready: ready(port.fetcher[i]!),
        };
      default:
        return {
          env: { REFRESH_WORKER_PORT: String(port.workers[i]) },
          ready: ready(port.workers[i]!),
        };
    }
  };

  /** Starts an app (`refresh-worker#1` for the second worker) and waits until it is ready. */
  async function start(instance: string, timeoutMs = 60_000) {
    const app = instance.split('#')[0]!;
    const { env: ports_, ready } = own(instance);
    const process_ = startApp(app, { ...common, ...env[app], ...ports_ });
    incarnations.push(process_);
    running.set(instance, process_);
    await waitForHealthy(process_, ready, timeoutMs);
    return process_;
  }

  // Side by side: none needs another to start, and most of a start is waiting for a consumer
  // group to form. The workers follow the sandbox, one after another, as before.
  const started = Promise.allSettled([
    start('plaid-sandbox').then(async () => {
      for (const worker of workerNames) await start(worker);
    }),
    ...[...instances.fetcher, ...instances.ingress, ...instances.projector].map((i) => start(i)),
  ]);
  const failed = (await started).find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all([...running.values()].map((a) => a.stop('SIGKILL')));
    throw failed.reason;
  }

  const ingressUrls = port.ingress.map((p) => `http://127.0.0.1:${p}/webhooks/plaid`);
  const proxy = settings.webhookProxy ? await webhookProxy(ingressUrls[0]!) : undefined;
  const balancer = ingressUrls.length > 1 ? await webhookBalancer(ingressUrls) : undefined;

  const cliEnv = {
    KAFKA_BROKERS: infra.brokers.join(','),
    KAFKA_TOPIC_PREFIX: prefix,
    DATABASE_URL: databaseUrl,
    TOKEN_ENCRYPTION_KEYS: tokenKeys,
    ADMIN_API_TOKENS: `faults:${adminToken}`,
    PROJECTOR_API_TOKENS: `faults:${readToken}`,
  };

  return {
    prefix,
    kafka,
    databaseUrl,
    sandbox: sandboxClient(`http://127.0.0.1:${port.sandbox}`),
    /** Where the sandbox's Items send their webhooks: the ingress, or the proxy before it. */
    webhookUrl: proxy?.url ?? balancer?.url ?? ingressUrls[0]!,
    proxy,
    workerNames,
    workerUrl,
    /** The other apps' processes by name, the first of each without a `#`. */
    instances,
    /** The report fetcher's consumer group (as its config names it). */
    fetcherGroup: `${prefix}cashflow-${FETCHER}`,
    adminToken,
    ingressMetricsUrl: `http://127.0.0.1:${port.ingressAdmin[0]}/metrics`,
    start,
    /** Stops an app with `signal` and waits for it to exit. */
    async stop(instance: string, signal: NodeJS.Signals = 'SIGTERM') {
      const app = running.get(instance);
      running.delete(instance);
      return app?.stop(signal);
    },
    /** A query on the system's database over a connection of its own (it may be restarting). */
    async count(query: string): Promise<number | undefined> {
      const client = new Client({ connectionString: databaseUrl, connectionTimeoutMillis: 1000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        const { rows } = await client.query<{ n: string }>(query);
        return Number(rows[0]?.n ?? 0);
      } catch {
        return undefined;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    /** Every app's output so far (all incarnations), for the secret search or a post-mortem. */
    writeLogs(logsDir: string) {
      mkdirSync(logsDir, { recursive: true });
      const file = join(logsDir, 'apps.log');
      writeFileSync(file, incarnations.map((a) => `${a.stdout()}\n${a.stderr()}`).join('\n'));
      return file;
    },
    /**
     * Rows of a query on the system's database. Not a probe run through an outage (`count` is):
     * its connection may take seconds on a loaded machine (1 s timed out once with the checker
     * and every app busy).
     */
    async rows(query: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
      const client = new Client({ connectionString: databaseUrl, connectionTimeoutMillis: 15_000 });
      await client.connect();
      try {
        return (await client.query(query, params)).rows as Record<string, unknown>[];
      } finally {
        await client.end();
      }
    },
    /** `cashflow-refresh check --json` with every app's output (all incarnations) as logs. */
    async check(logsDir: string) {
      this.writeLogs(logsDir);
      const args = ['check', '--sandbox', `http://127.0.0.1:${port.sandbox}`];
      return cli([...args, '--logs', logsDir, '--max-pending', '0', '--json'], cliEnv);
    },
    /** The apps that exited without being asked to, with their last output. */
    crashed() {
      return [...running].flatMap(([instance, app]) =>
        app.child.exitCode !== null || app.child.signalCode !== null
          ? [`${instance} exited: ${app.stderr().slice(-2000) || app.stdout().slice(-2000)}`]
          : [],
      );
    },
    async close() {
      await Promise.all([...running.values()].map((a) => a.stop('SIGTERM')));
      running.clear();
      await proxy?.close();
      await balancer?.close();
    },
  };
}

export type FaultSystem = Awaited<ReturnType<typeof faultSystem>>;
