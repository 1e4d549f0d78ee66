/**
 * Report fetcher benchmark: prints a table and writes bench/results/<date>-report-fetcher.json.
 *
 *   npm run bench:fetcher                # 2,000 Items x 1,000 transactions
 *   npm run bench:fetcher -- --quick     # 200 Items x 1,000 transactions
 *   BENCH_FETCHER_NODE_FLAGS=--cpu-prof npm run bench:fetcher -- --quick   # node flags for the fetcher
 *     (default: those docker-compose.yml and scripts/run-local.sh use)
 *   REPORT_FETCH_CONCURRENCY=16 npm run bench:fetcher   # REPORT_* variables go to the fetcher
 *
 * 1. Fetch: every Item (2 accounts x 500 transactions, all inside 730 days) has its token in the
 *    vault and a RefreshAccepted (730 days) the fetcher has read; then a ReportReady each. The
 *    fetcher (dist/apps/report-fetcher, its own process, its defaults) pages the sandbox (its
 *    own process, no latency) into PostgreSQL and publishes the changelog and ReportFetched.
 *    Timed from the first ReportReady published to the last ReportFetched read; every row is
 *    counted afterwards, and a missing one fails the bench. Peak RSS is the fetcher's VmHWM.
 * 2. Ceiling, in the same run and database: the same rows (the sandbox's pages, read untimed)
 *    written with plain multi-row `pg` INSERTs, one page (500 rows) per statement, on as many
 *    connections as the fetcher runs fetches, into an empty copy of report_transactions (same
 *    columns, same indexes). Only the INSERTs are timed.
 */
import { TokenCipher, TokenVault } from '@cashflow/access-tokens';
import { LOCAL_SANDBOX_CREDENTIALS, reportFetcherVariables } from '@cashflow/config';
import {
  createEvent,
  decodeEvent,
  topicName,
  TOPIC_KEYS,
  DEFAULT_PARTITIONS,
  type RefreshAccepted,
  type ReportFetched,
  type ReportReady,
} from '@cashflow/contracts';
import { EventPublisher, createKafka, ensureTopics } from '@cashflow/kafka';
import { createLogger } from '@cashflow/observability';
import type { Kafka } from 'kafkajs';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import {
  benchPrefix,
  benchDatabase,
  dropBenchDatabase,
  ensureInfra,
  freePort,
  machine,
  processSampler,
  sharedCpu,
  run,
  runBench,
  stopAll,
  stopInfra,
  table,
  waitForHttp,
  waitUntil,
  writeResults,
  type Proc,
} from './support';

const quick = process.argv.includes('--quick');
const ITEMS = quick ? 200 : 2_000;
const PER_ACCOUNT = 500;
const ACCOUNTS = 2; // the sandbox's default Item
const PER_ITEM = PER_ACCOUNT * ACCOUNTS;
const DAYS = 730;
const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:19092';
/**
 * kafkajs logs an error for every fresh partition whose leader it asks for too early, and then
 * retries; a failure that matters rejects the call instead, so only fatal lines are kept.
 */
const logger = createLogger({ service: 'bench', level: 'fatal' });
const KEY_ID = 'bench';
const KEY = randomBytes(32);
/** The fetcher's node flags: docker-compose.yml's and scripts/run-local.sh's unless given. */
const FETCHER_NODE_FLAGS = (
  process.env.BENCH_FETCHER_NODE_FLAGS ?? '--max-semi-space-size=8 --heap-growing-percent=50'
)
  .split(/\s+/)
  .filter(Boolean);
/** REPORT_* variables set for the bench go to the fetcher; none are set for the recorded runs. */
const FETCHER_OVERRIDES = Object.fromEntries(
  Object.entries(process.env).filter(
    (e): e is [string, string] => e[0].startsWith('REPORT_') && e[1] !== undefined,
  ),
);
/** The fetcher's settings as it will read them: its defaults unless overridden above. */
const CONCURRENCY = reportFetcherVariables.REPORT_FETCH_CONCURRENCY.parse(
  FETCHER_OVERRIDES.REPORT_FETCH_CONCURRENCY,
);
const PAGE_SIZE = reportFetcherVariables.REPORT_FETCH_PAGE_SIZE.parse(
  FETCHER_OVERRIDES.REPORT_FETCH_PAGE_SIZE,
);
/** Items whose pages the ceiling holds in memory at once (read untimed, then inserted timed). */
const CEILING_BATCH = 200;
/**
 * The report ingestion issue's targets (20,000/s and RSS under 300 MB), with the performance
 * issue's share of the ceiling (80%, raised from the first 50%).
 */
const TARGETS = { rowsPerS: 20_000, shareOfCeiling: 80, rssMb: 300 };

const itemId = (i: number) => `bench-fetch-item-${i}`;
const token = (i: number) => `access-sandbox-bench-fetch-${String(i).padStart(8, '0')}`;
const ITEM_INDEXES = Array.from({ length: ITEMS }, (_, i) => i);
const round = (n: number, places = 0) => Math.round(n * 10 ** places) / 10 ** places;

/** Runs `work` over `inputs`, `width` at a time. */
async function pool<T>(inputs: readonly T[], width: number, work: (input: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, inputs.length) }, async () => {
      while (next < inputs.length) await work(inputs[next++]!);
    }),
  );
}

interface Page {
  readonly transactions: Record<string, unknown>[];
  readonly total_transactions: number;
  readonly has_more: boolean;
  readonly next_cursor: string;
}

async function getPage(plaidUrl: string, i: number, count: number, cursor = ''): Promise<Page> {
  const response = await fetch(`${plaidUrl}/cashflow_report/get`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_id: LOCAL_SANDBOX_CREDENTIALS.clientId,
      secret: LOCAL_SANDBOX_CREDENTIALS.secret,
      access_token: token(i),
      days_requested: DAYS,
      count,
      cursor,
    }),
  });
  if (response.status !== 200) {
    throw new Error(`/cashflow_report/get for ${itemId(i)}: ${response.status}`);
  }
  return (await response.json()) as Page;
}

/**
 * The sandbox in its own process, seeded with the Items. Each Item is asked for one transaction
 * first (untimed): the sandbox builds an Item's history on first use, which is the test double's
 * cost, not the fetcher's, and the answer confirms every transaction is inside the window.
 */
async function sandbox(): Promise<{ proc: Proc; url: string }> {
  const seed = join(tmpdir(), `bench-fetch-seed-${randomUUID()}.json`);
  const items = ITEM_INDEXES.map((i) => ({
    item_id: itemId(i),
    access_token: token(i),
    webhook: null,
    transactions_per_account: PER_ACCOUNT,
  }));
  writeFileSync(seed, JSON.stringify(items));
  const port = await freePort();
  const proc = run('apps/plaid-sandbox/src/main.js', {
    PLAID_SANDBOX_PORT: String(port),
    PLAID_SANDBOX_SEED_FILE: seed,
    LOG_LEVEL: 'warn',
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/health/ready`, proc);
  await pool(ITEM_INDEXES, 8, async (i) => {
    const page = await getPage(url, i, 1);
    if (page.total_transactions !== PER_ITEM) {
      throw new Error(
        `${itemId(i)} has ${page.total_transactions} transactions in ${DAYS} days, not ${PER_ITEM}`,
      );
    }
  });
  return { proc, url };
}

/** Every Item's token in the vault, through the vault itself, with the fetcher's key. */
async function registerTokens(dbUrl: string): Promise<void> {
  const db = new DataSource({ type: 'postgres', url: dbUrl });
  await db.initialize();
  try {
    const vault = new TokenVault(db, new TokenCipher(new Map([[KEY_ID, KEY]]), KEY_ID));
    await pool(ITEM_INDEXES, 8, async (i) => {
      await vault.put(itemId(i), token(i), 'bench');
    });
  } finally {
    await db.destroy();
  }
}

/** Topics with a fresh prefix, a publisher, and a reader noting when each ReportFetched arrives. */
async function topics() {
  const prefix = benchPrefix(BROKERS);
  const kafka: Kafka = createKafka({
    brokers: BROKERS.split(','),
    clientId: 'bench',
    topicPrefix: prefix,
    logger,
  });
  await ensureTopics(kafka, { prefix, partitions: DEFAULT_PARTITIONS, replicationFactor: 1 });
  const fetched = new Map<string, { at: number; event: ReportFetched }>();
  const failed: string[] = [];
  const consumer = kafka.consumer({ groupId: `${prefix}reader`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topicName('reportFetches', prefix)], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const message of batch.messages) {
        const decoded = decodeEvent(message);
        if (!decoded.ok) continue;
        const event = decoded.value;
        if (event.type === 'ReportFetched' && !fetched.has(event.data.item_id)) {
          fetched.set(event.data.item_id, { at: now, event });
        } else if (event.type === 'ReportFetchFailed') {
          failed.push(`${event.data.item_id}: ${JSON.stringify(event.data.error)}`);
        }
      }
      await Promise.resolve();
    },
  });
  const publisher = new EventPublisher(kafka, prefix);
  await publisher.connect();
  const publishAll = async (events: (RefreshAccepted | ReportReady)[]) => {
    for (let start = 0; start < events.length; start += 500) {
      await publisher.publish(...events.slice(start, start + 500));
    }
  };
  return {
    prefix,
    fetched,
    failed,
    /** A RefreshAccepted over DAYS for every Item, accepted a minute ago. */
    accepted(): Promise<void> {
      const at = new Date(Date.now() - 60_000).toISOString();
      return publishAll(
        ITEM_INDEXES.map((i) => {
          const requestId = randomUUID();
          return createEvent(
            'RefreshAccepted',
            {
              item_id: itemId(i),
              refresh_request_id: requestId,
              plaid_request_id: `req-${randomUUID()}`,
              days_requested: DAYS,
              attempts: 1,
              accepted_at: at,
            },
            { id: randomUUID(), source: 'urn:bench', time: at, correlationId: requestId },
          );
        }),
      );
    },
    /** A ReportReady for every Item, as the ingress publishes it. */
    ready(): Promise<void> {
      const at = new Date().toISOString();
      return publishAll(
        ITEM_INDEXES.map((i) => {
          const webhook = {
            webhook_type: 'CASHFLOW_REPORT',
            webhook_code: 'CASHFLOW_REPORT_READY',
            item_id: itemId(i),
            error: null,
            environment: 'sandbox',
          };
          return createEvent(
            'ReportReady',
            {
              item_id: itemId(i),
              webhook_type: webhook.webhook_type,
              webhook_code: webhook.webhook_code,
              environment: 'sandbox',
              found_by: 'webhook',
              received_at: at,
              delivery_id: randomBytes(32).toString('hex'),
              webhook,
            },
            { id: randomUUID(), source: 'urn:bench', time: at },
          );
        }),
      );
    },
    async close() {
      await consumer.disconnect();
      await publisher.disconnect();
      // The changelog alone holds every transaction (over a gigabyte for the full form).
      const admin = kafka.admin();
      await admin.connect();
      await admin
        .deleteTopics({ topics: TOPIC_KEYS.map((key) => topicName(key, prefix)) })
        .catch(() => undefined);
      await admin.disconnect();
    },
  };
}

async function fetcher(
  dbUrl: string,
  plaidUrl: string,
  prefix: string,
): Promise<{ proc: Proc; port: number }> {
  const port = await freePort();
  const proc = run(
    'apps/report-fetcher/src/main.js',
    {
      KAFKA_BROKERS: BROKERS,
      KAFKA_TOPIC_PREFIX: prefix,
      DATABASE_URL: dbUrl,
      PLAID_ENV: 'local',
      PLAID_BASE_URL: plaidUrl,
      REPORT_FETCHER_PORT: String(port),
      TOKEN_ENCRYPTION_KEYS: `${KEY_ID}:${KEY.toString('base64')}`,
      ADMIN_API_TOKENS: `bench:${randomBytes(24).toString('hex')}`,
      LOG_LEVEL: 'warn',
      ...FETCHER_OVERRIDES,
    },
    FETCHER_NODE_FLAGS,
  );
  await waitForHttp(`http://127.0.0.1:${port}/health/ready`, proc);
  return { proc, port };
}

/**
 * What the fetcher's database connections are doing, sampled: a connection idle in its
 * transaction is waiting on the fetcher (a Plaid page, JSON, the event loop), an active one on
 * PostgreSQL.
 */
function connectionSampler(dbUrl: string) {
  const counts = new Map<string, number>();
  let samples = 0;
  let stopped = false;
  const client = new Client({ connectionString: dbUrl, application_name: 'bench-sampler' });
  const what = (state: string | null, query: string): string => {
    const q = query.replace(/\s+/g, ' ').trim();
    const statement = q.startsWith('WITH page AS')
      ? 'write a page (INSERT ... jsonb_array_elements)'
      : q.startsWith('WITH seen AS')
        ? 'mark unseen removed'
        : q.startsWith('SELECT transaction_id, content, last_change')
          ? 'read changelog rows'
          : q.split(' ').slice(0, 3).join(' ');
    if (state === 'idle in transaction') return 'idle in transaction (fetcher side)';
    if (state === 'active') return `active: ${statement}`;
    return state ?? 'unknown';
  };
  const done = (async () => {
    await client.connect();
    while (!stopped) {
      const rows = (
        await client.query<{ state: string | null; query: string }>(
          `SELECT state, query FROM pg_stat_activity WHERE application_name = 'cashflow-report-fetcher'`,
        )
      ).rows;
      samples += 1;
      for (const r of rows) {
        const key = what(r.state, r.query);
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await client.end();
  })();
  return {
    async stop() {
      stopped = true;
      await done;
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      return {
        samples,
        /** Share of connection-samples per state, in percent, largest first. */
        shares: Object.fromEntries(
          [...counts]
            .sort((a, b) => b[1] - a[1])
            .map(([k, n]) => [k, round((n / Math.max(1, total)) * 100, 1)]),
        ),
        /** Connections busy with a fetch, on average (everything but idle). */
        mean_in_use: round(
          [...counts].filter(([k]) => k !== 'idle').reduce((a, [, n]) => a + n, 0) /
            Math.max(1, samples),
          2,
        ),
      };
    },
  };
}

async function checkpoint(dbUrl: string): Promise<void> {
  const client = new Client({ connectionString: dbUrl });
  await client.connect();
  // Neither phase should start by paying for the other's dirty pages; not every role may.
  await client.query('CHECKPOINT').catch(() => undefined);
  await client.end();
}

async function count(dbUrl: string, sql: string): Promise<number> {
  const client = new Client({ connectionString: dbUrl });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>(sql)).rows[0]!.n);
  } finally {
    await client.end();
  }
}

/**
 * Resolves once every Item has its ReportFetched; fails at once on a ReportFetchFailed, the
 * fetcher's exit, or five minutes without a fetch. Says how far it got every 15 s.
 */
async function everyItemFetched(
  t: { fetched: ReadonlyMap<string, unknown>; failed: readonly string[] },
  proc: Proc,
  first: number,
): Promise<void> {
  let seen = 0;
  let progressAt = Date.now();
  let reportedAt = Date.now();
  const deadline = first + (quick ? 20 : 90) * 60_000;
  while (t.fetched.size < ITEMS) {
    if (proc.child.exitCode !== null) throw new Error('the fetcher exited');
    if (t.failed.length > 0) throw new Error(`fetches failed: ${t.failed.slice(0, 5).join('; ')}`);
    const now = Date.now();
    if (now > deadline) throw new Error(`timed out at ${t.fetched.size}/${ITEMS} fetched`);
    if (t.fetched.size > seen) {
      seen = t.fetched.size;
      progressAt = now;
    } else if (now - progressAt > 5 * 60_000) {
      throw new Error(`no fetch for 5 minutes at ${seen}/${ITEMS}`);
    }
    if (now - reportedAt > 15_000) {
      reportedAt = now;
      const rate = (seen * PER_ITEM) / ((now - first) / 1000);
      process.stderr.write(`  ${seen}/${ITEMS} fetched, ${Math.round(rate)} transactions/s\n`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function fetchPhase(
  dbUrl: string,
  plaidUrl: string,
  sandboxSampler: ReturnType<typeof processSampler>,
) {
  const t = await topics();
  const { proc } = await fetcher(dbUrl, plaidUrl, t.prefix);
  try {
    const sampler = processSampler(proc.child.pid!);
    const acceptStart = Date.now();
    await t.accepted();
    await waitUntil(
      'the fetcher to read every acceptance',
      async () =>
        (await count(dbUrl, 'SELECT count(*) AS n FROM report_fetch_items')) >= ITEMS
          ? true
          : undefined,
      10 * 60_000,
    );
    const acceptSeconds = (Date.now() - acceptStart) / 1000;
    await checkpoint(dbUrl);
    const connections = connectionSampler(dbUrl);
    const load = loadavg()[0]!;

    const first = Date.now();
    const sandboxCpuBefore = sandboxSampler.cpuSeconds;
    const fetcherCpuBefore = sampler.cpuSeconds;
    const shared = sharedCpu();
    await t.ready();
    await everyItemFetched(t, proc, first).catch((error: Error) => {
      throw new Error(`${error.message}\nfetcher output:\n${proc.output()}`);
    });
    const sharedUse = shared.stop();
    const fetched = [...t.fetched.values()];
    const last = Math.max(...fetched.map((f) => f.at));
    const seconds = (last - first) / 1000;
    const activity = await connections.stop();
    const sandboxCpu = round(sandboxSampler.cpuSeconds - sandboxCpuBefore, 1);
    const loadAfter = loadavg()[0]!;
    sampler.stop();
    const fetcherCpu = round(sampler.cpuSeconds - fetcherCpuBefore, 1);
    await proc.stop();
    const fetcherOutput = proc.output();

    // Every row there, or the bench fails: a fast fetcher that loses data measures nothing.
    const short = fetched.filter((f) => f.event.data.transactions !== PER_ITEM);
    if (short.length > 0) {
      throw new Error(
        `${short.length} fetches read fewer than ${PER_ITEM} transactions, e.g. ${JSON.stringify(short[0]!.event.data)}`,
      );
    }
    const rows = await count(
      dbUrl,
      'SELECT count(*) AS n FROM report_transactions WHERE removed_at IS NULL',
    );
    const items = await count(
      dbUrl,
      'SELECT count(DISTINCT item_id) AS n FROM report_transactions',
    );
    if (rows !== ITEMS * PER_ITEM || items !== ITEMS) {
      throw new Error(
        `report_transactions holds ${rows} rows of ${items} Items; ${ITEMS * PER_ITEM} rows of ${ITEMS} Items expected`,
      );
    }

    // Where a fetch's time goes: duration_ms runs from the attempt's start (insights, then
    // every page read and written) to the end of paging; the rest, to ReportFetched read here,
    // is the removals, accounts, commit, changelog and the event.
    const paging = fetched.map((f) => f.event.data.duration_ms);
    const after = fetched.map((f) => f.at - Date.parse(f.event.data.fetched_at));
    const mean = (list: number[]) => list.reduce((a, b) => a + b, 0) / list.length;
    await t.close();
    return {
      items: ITEMS,
      transactions: rows,
      seconds: round(seconds, 1),
      transactions_per_s: Math.round(rows / seconds),
      fetches_per_s: round(ITEMS / seconds, 1),
      peak_rss_mb: sampler.hwmMb,
      sampled_peak_rss_mb: sampler.peakMb,
      // CPU in the timed window (from the first ReportReady to the last ReportFetched), by process.
      fetcher_cpu_s: fetcherCpu,
      sandbox_cpu_s: sandboxCpu,
      ...sharedUse,
      acceptances_read_s: round(acceptSeconds, 1),
      per_fetch_ms: {
        insights_and_pages_mean: Math.round(mean(paging)),
        commit_changelog_event_mean: Math.round(mean(after)),
      },
      database_connections: activity,
      load_1m: { before: round(load, 2), after: round(loadAfter, 2) },
      fetcher_warnings: fetcherOutput.split('\n').filter(Boolean).slice(-5),
    };
  } catch (error) {
    await t.close().catch(() => undefined);
    throw error;
  }
}

/** The sandbox's pages of some Items as the ceiling's INSERT statements' parameters. */
async function ceilingStatements(plaidUrl: string, indexes: readonly number[]) {
  const statements: unknown[][] = [];
  const at = new Date();
  await pool(indexes, 8, async (i) => {
    const fetchId = randomUUID();
    let cursor = '';
    for (;;) {
      const page = await getPage(plaidUrl, i, PAGE_SIZE, cursor);
      const params: unknown[] = [];
      for (const t of page.transactions) {
        params.push(
          itemId(i),
          t.transaction_id,
          t.account_id,
          t.date,
          t.amount,
          t.pending,
          JSON.stringify(t),
          at,
          at,
          fetchId,
          fetchId,
        );
      }
      if (params.length > 0) statements.push(params);
      if (!page.has_more) return;
      cursor = page.next_cursor;
    }
  });
  return statements;
}

const CEILING_COLUMNS = 11;

function insertSql(rows: number): string {
  const values = Array.from({ length: rows }, (_, r) => {
    const b = r * CEILING_COLUMNS;
    const p = (n: number) => `$${b + n}`;
    return `(${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, NULL, ${p(10)}, ${p(11)}, 'added')`;
  });
  return `INSERT INTO report_transactions_ceiling
            (item_id, transaction_id, account_id, date, amount, pending, content, first_seen_at,
             last_changed_at, removed_at, first_fetch_id, last_fetch_id, last_change)
          VALUES ${values.join(', ')}`;
}

async function ceiling(dbUrl: string, plaidUrl: string) {
  const admin = new Client({ connectionString: dbUrl });
  await admin.connect();
  await admin.query(
    'CREATE TABLE report_transactions_ceiling (LIKE report_transactions INCLUDING ALL)',
  );
  await admin.end();
  await checkpoint(dbUrl);
  const clients = await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      const client = new Client({ connectionString: dbUrl, application_name: 'bench-ceiling' });
      await client.connect();
      return client;
    }),
  );
  let insertMs = 0;
  let statementCount = 0;
  const cpu = { postgres_cpu_s: 0, kafka_cpu_s: 0, machine_busy_cpu_s: 0 };
  try {
    for (let start = 0; start < ITEMS; start += CEILING_BATCH) {
      const statements = await ceilingStatements(
        plaidUrl,
        ITEM_INDEXES.slice(start, start + CEILING_BATCH),
      );
      let next = 0;
      const began = performance.now();
      const shared = sharedCpu();
      await Promise.all(
        clients.map(async (client) => {
          while (next < statements.length) {
            const params = statements[next++]!;
            await client.query(insertSql(params.length / CEILING_COLUMNS), params);
          }
        }),
      );
      insertMs += performance.now() - began;
      const used = shared.stop();
      cpu.postgres_cpu_s += used.postgres_cpu_s;
      cpu.kafka_cpu_s += used.kafka_cpu_s;
      cpu.machine_busy_cpu_s += used.machine_busy_cpu_s;
      statementCount += statements.length;
    }
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
  const rows = await count(dbUrl, 'SELECT count(*) AS n FROM report_transactions_ceiling');
  if (rows !== ITEMS * PER_ITEM) {
    throw new Error(`the ceiling wrote ${rows} rows, ${ITEMS * PER_ITEM} expected`);
  }
  return {
    rows,
    statements: statementCount,
    rows_per_statement: PAGE_SIZE,
    connections: CONCURRENCY,
    insert_seconds: round(insertMs / 1000, 1),
    rows_per_s: Math.round(rows / (insertMs / 1000)),
    // CPU while the INSERTs ran (the timed parts only).
    postgres_cpu_s: round(cpu.postgres_cpu_s, 1),
    kafka_cpu_s: round(cpu.kafka_cpu_s, 1),
    machine_busy_cpu_s: round(cpu.machine_busy_cpu_s, 1),
  };
}

const verdict = (pass: boolean) => (pass ? 'PASS' : 'FAIL');
const CORES = cpus().length;
/** CPU seconds spent on the run's transactions, as microseconds per transaction. */
const perRow = (cpuSeconds: number) => Math.round((cpuSeconds / (ITEMS * PER_ITEM)) * 1e6);

async function main() {
  const started = ensureInfra();
  const dbUrl = await benchDatabase();
  try {
    const box = await sandbox();
    await registerTokens(dbUrl);
    const sandboxSampler = processSampler(box.proc.child.pid!);
    const fetched = await fetchPhase(dbUrl, box.url, sandboxSampler);
    sandboxSampler.stop();
    const plain = await ceiling(dbUrl, box.url);
    await box.proc.stop();

    const share = round((fetched.transactions_per_s / plain.rows_per_s) * 100, 1);
    const pass = {
      transactions_per_s: fetched.transactions_per_s >= TARGETS.rowsPerS,
      share_of_ceiling: share >= TARGETS.shareOfCeiling,
      peak_rss: fetched.peak_rss_mb < TARGETS.rssMb,
    };
    const result = {
      date: new Date().toISOString(),
      quick,
      machine: machine(),
      settings: {
        items: ITEMS,
        transactions_per_item: PER_ITEM,
        days_requested: DAYS,
        concurrency: CONCURRENCY,
        page_size: PAGE_SIZE,
        fetcher_overrides: FETCHER_OVERRIDES,
        fetcher_node_flags: FETCHER_NODE_FLAGS.join(' '),
      },
      fetch: fetched,
      ceiling: plain,
      percent_of_ceiling: share,
      targets: TARGETS,
      pass,
    };
    const rows: (string | number)[][] = [
      ['measure', 'value', 'target', ''],
      [
        `transactions stored/s (${ITEMS} Items x ${PER_ITEM}, ${CONCURRENCY} fetches at once)`,
        fetched.transactions_per_s,
        `>= ${TARGETS.rowsPerS}`,
        verdict(pass.transactions_per_s),
      ],
      ['fetches/s', fetched.fetches_per_s, '', ''],
      [
        'fetcher peak RSS (MB, VmHWM)',
        fetched.peak_rss_mb,
        `< ${TARGETS.rssMb}`,
        verdict(pass.peak_rss),
      ],
      [
        `ceiling rows/s (plain pg INSERT, ${PAGE_SIZE} rows, ${CONCURRENCY} connections)`,
        plain.rows_per_s,
        '',
        '',
      ],
      ['percent of ceiling', share, `>= ${TARGETS.shareOfCeiling}`, verdict(pass.share_of_ceiling)],
      [
        'rows stored / expected',
        `${fetched.transactions} / ${ITEMS * PER_ITEM}`,
        '',
        fetched.transactions === ITEMS * PER_ITEM ? 'ok' : 'MISSING',
      ],
      [
        'fetch seconds / ceiling insert seconds',
        `${fetched.seconds} / ${plain.insert_seconds}`,
        '',
        '',
      ],
      [
        'per fetch, mean ms: insights + pages / commit + changelog + event',
        `${fetched.per_fetch_ms.insights_and_pages_mean} / ${fetched.per_fetch_ms.commit_changelog_event_mean}`,
        '',
        '',
      ],
      [
        'fetcher CPU s / sandbox CPU s, timed window',
        `${fetched.fetcher_cpu_s} / ${fetched.sandbox_cpu_s}`,
        '',
        '',
      ],
      [
        'PostgreSQL / Kafka / whole machine CPU s: fetch',
        `${fetched.postgres_cpu_s} / ${fetched.kafka_cpu_s} / ${fetched.machine_busy_cpu_s} of ${round(fetched.seconds * CORES, 1)}`,
        '',
        '',
      ],
      [
        'PostgreSQL / Kafka / whole machine CPU s: ceiling',
        `${plain.postgres_cpu_s} / ${plain.kafka_cpu_s} / ${plain.machine_busy_cpu_s} of ${round(plain.insert_seconds * CORES, 1)}`,
        '',
        '',
      ],
      [
        'CPU µs per transaction: fetcher / PostgreSQL (fetch); PostgreSQL (ceiling)',
        `${perRow(fetched.fetcher_cpu_s)} / ${perRow(fetched.postgres_cpu_s)}; ${perRow(plain.postgres_cpu_s)}`,
        '',
        '',
      ],
      [
        'load average (1 min) before / after',
        `${fetched.load_1m.before} / ${fetched.load_1m.after}`,
        '',
        '',
      ],
    ];
    const shares = Object.entries(fetched.database_connections.shares);
    const rest = shares.filter(([, v]) => v < 0.5).reduce((a, [, v]) => a + v, 0);
    const connections: (string | number)[][] = [
      ['fetcher database connections (share of samples)', '%'],
      ...shares.filter(([, v]) => v >= 0.5),
      ['everything else', round(rest, 1)],
    ];
    process.stdout.write(`\n${table(rows)}\n\n${table(connections)}\n\n`);
    writeResults('report-fetcher', quick, result);
  } finally {
    await stopAll();
    await dropBenchDatabase(dbUrl).catch(() => undefined);
    stopInfra(started);
  }
}

runBench(main);
