/**
 * Refresh worker benchmark: prints a table and writes bench/results/<date>-refresh-worker.json.
 *
 *   npm run bench:worker                # the full run
 *   npm run bench:worker -- --quick     # fewer requests, rate-limit windows 10x shorter
 *   BENCH_WORKER_NODE_FLAGS='--max-semi-space-size=8' npm run bench:worker -- --only=throughput
 *
 * 1. throughput: 20,000 RefreshRequested for distinct Items, one worker process, a 3-partition
 *    topic, the Plaid sandbox answering every refresh after a fixed 2 s, no rate limits. Run
 *    twice: with the worker's production node flags, and without them.
 * 2. baseline: the same work through a plain NestJS @EventPattern handler on NestJS's default
 *    Kafka transport, for a fixed time; the ratio of the two rates is reported.
 * 3. rate limits: the sandbox enforcing 100 calls/min per client and 2/min per Item, 2,000
 *    requests over 500 Items: the share of the allowed rate reached, and 429s seen.
 */
import { TokenCipher } from '@cashflow/access-tokens';
import { createEvent, topicName, type RefreshRequested } from '@cashflow/contracts';
import { EventPublisher, createKafka, ensureTopics } from '@cashflow/kafka';
import { createLogger } from '@cashflow/observability';
import type { Kafka } from 'kafkajs';
import { randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import {
  ensureInfra,
  freePort,
  machine,
  percentile,
  processSampler,
  run,
  stopAll,
  stopInfra,
  table,
  waitForHttp,
  waitUntil,
  writeResults,
  benchDatabase,
  dropBenchDatabase,
  runBench,
  type Proc,
} from './support';

const quick = process.argv.includes('--quick');
/** `--only=throughput` runs just the first scenario (for profiling memory). */
const onlyThroughput = process.argv.includes('--only=throughput');
const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:19092';
const logger = createLogger({ service: 'bench', level: 'error' });
const KEYS = `bench:${randomBytes(32).toString('base64')}`;
/**
 * The flags docker-compose.yml and scripts/run-local.sh start the worker with. The throughput
 * scenario also runs without them, so the table shows what they buy and what they cost.
 */
const WORKER_NODE_FLAGS = process.env.BENCH_WORKER_NODE_FLAGS?.split(' ').filter(Boolean) ?? [
  '--heap-growing-percent=20',
];

const THROUGHPUT_REQUESTS = quick ? 4000 : 20_000;
const BASELINE_SECONDS = quick ? 20 : 40;
const LIMITED = quick
  ? { items: 300, requests: 1200, windowMs: 6000 }
  : { items: 500, requests: 2000, windowMs: 60_000 };

const itemId = (i: number) => `bench-item-${i}`;
const token = (i: number) => `access-sandbox-bench-${String(i).padStart(8, '0')}`;

/** Registers tokens straight into the vault's table (the API would take minutes for 20,000). */
async function registerTokens(url: string, count: number): Promise<void> {
  const cipher = new TokenCipher(
    new Map([['bench', Buffer.from(KEYS.split(':')[1]!, 'base64')]]),
    'bench',
  );
  const client = new Client({ connectionString: url });
  await client.connect();
  for (let start = 0; start < count; start += 1000) {
    const params: unknown[] = [];
    const rows: string[] = [];
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      const sealed = cipher.seal(itemId(i), token(i));
      const b = params.length;
      params.push(itemId(i), sealed.keyId, sealed.iv, sealed.ciphertext, sealed.authTag, 'bench');
      rows.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6})`);
    }
    await client.query(
      `INSERT INTO item_access_tokens (item_id, key_id, iv, ciphertext, auth_tag, registered_by) VALUES ${rows.join(',')}`,
      params,
    );
  }
  await client.end();
}

async function sandbox(
  count: number,
  env: Record<string, string>,
): Promise<{ proc: Proc; url: string }> {
  const seed = join(tmpdir(), `bench-seed-${randomUUID()}.json`);
  const items = Array.from({ length: count }, (_, i) => ({
    item_id: itemId(i),
    access_token: token(i),
    webhook: null,
    transactions_per_account: 0,
  }));
  writeFileSync(seed, JSON.stringify(items));
  const port = await freePort();
  const proc = run('apps/plaid-sandbox/src/main.js', {
    PLAID_SANDBOX_PORT: String(port),
    PLAID_SANDBOX_SEED_FILE: seed,
    PLAID_SANDBOX_EXTRACTION_DELAY_MS: '0',
    LOG_LEVEL: 'warn',
    ...env,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/health/ready`, proc);
  return { proc, url };
}

async function sandboxAnswers(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const answers: Record<string, number> = {};
  for (const match of text.matchAll(
    /plaid_sandbox_refresh_answers_total\{[^}]*error_code="([^"]+)"[^}]*\} (\d+)/g,
  )) {
    answers[match[1]!] = Number(match[2]);
  }
  return answers;
}

async function worker(env: Record<string, string>, nodeFlags = WORKER_NODE_FLAGS): Promise<Proc> {
  const port = await freePort();
  const proc = run(
    'apps/refresh-worker/src/main.js',
    {
      KAFKA_BROKERS: BROKERS,
      REFRESH_WORKER_PORT: String(port),
      TOKEN_ENCRYPTION_KEYS: KEYS,
      ADMIN_API_TOKENS: `bench:${randomBytes(24).toString('hex')}`,
      LOG_LEVEL: 'warn',
      ...env,
    },
    nodeFlags,
  );
  await waitForHttp(`http://127.0.0.1:${port}/health/ready`, proc);
  return proc;
}

/** Topics with a fresh prefix and a reader that notes when each request's outcome arrives. */
async function topics(partitions: number) {
  const prefix = `bench-${randomBytes(3).toString('hex')}.`;
  const kafka: Kafka = createKafka({
    brokers: BROKERS.split(','),
    clientId: 'bench',
    topicPrefix: prefix,
    logger,
  });
  await ensureTopics(kafka, { prefix, partitions, replicationFactor: 1 });
  const arrived = new Map<
    string,
    { at: number; leader: boolean; plaidRequestId: string | undefined }
  >();
  const consumer = kafka.consumer({ groupId: `${prefix}reader`, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topicName('refreshOutcomes', prefix)], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const message of batch.messages) {
        const data = JSON.parse(message.value?.toString() ?? '{}') as {
          refresh_request_id: string;
          coalesced_into?: string;
          plaid_request_id?: string;
        };
        if (!arrived.has(data.refresh_request_id)) {
          arrived.set(data.refresh_request_id, {
            at: now,
            leader: !data.coalesced_into,
            plaidRequestId: data.plaid_request_id,
          });
        }
      }
      await Promise.resolve();
    },
  });
  const publisher = new EventPublisher(kafka, prefix);
  await publisher.connect();
  const sent = new Map<string, number>();
  return {
    prefix,
    arrived,
    sent,
    async publish(items: number[]) {
      for (let start = 0; start < items.length; start += 1000) {
        const events: RefreshRequested[] = items
          .slice(start, start + 1000)
          .map((i) =>
            createEvent(
              'RefreshRequested',
              { item_id: itemId(i), days_requested: 90 },
              { id: randomUUID(), source: 'urn:bench', time: new Date().toISOString() },
            ),
          );
        const now = Date.now();
        events.forEach((e) => sent.set(e.metadata.id, now));
        await publisher.publish(...events);
      }
    },
    async close() {
      await consumer.disconnect();
      await publisher.disconnect();
    },
  };
}

async function throughput(dbUrl: string, plaidUrl: string, nodeFlags = WORKER_NODE_FLAGS) {
  const t = await topics(3);
  const proc = await worker(
    {
      KAFKA_TOPIC_PREFIX: t.prefix,
      DATABASE_URL: dbUrl,
      PLAID_BASE_URL: plaidUrl,
      REFRESH_MAX_IN_FLIGHT: '1000',
      PLAID_RATE_LIMIT_PER_ITEM: '1000000',
      PLAID_RATE_LIMIT_PER_CLIENT: '1000000',
    },
    nodeFlags,
  );
  const sampler = processSampler(proc.child.pid!);
  const first = Date.now();
  await t.publish(Array.from({ length: THROUGHPUT_REQUESTS }, (_, i) => i));
  await waitUntil(
    'every outcome',
    () => (t.arrived.size >= THROUGHPUT_REQUESTS ? true : undefined),
    20 * 60_000,
  );
  sampler.stop();
  const last = Math.max(...[...t.arrived.values()].map((a) => a.at));
  const latencies = [...t.arrived]
    .map(([id, a]) => a.at - (t.sent.get(id) ?? a.at))
    .sort((a, b) => a - b);
  await proc.stop();
  await t.close();
  return {
    requests: THROUGHPUT_REQUESTS,
    outcomes_per_s: Math.round((THROUGHPUT_REQUESTS / (last - first)) * 1000 * 10) / 10,
    p50_ms: percentile(latencies, 0.5),
    p99_ms: percentile(latencies, 0.99),
    peak_rss_mb: sampler.peakMb,
    worker_cpu_s: sampler.cpuSeconds,
    node_flags: nodeFlags.join(' '),
  };
}

async function baseline(dbUrl: string, plaidUrl: string) {
  const t = await topics(3);
  await t.publish(Array.from({ length: 2000 }, (_, i) => i));
  const proc = run('bench/plain-handler/main.js', {
    KAFKA_BROKERS: BROKERS,
    KAFKA_TOPIC_PREFIX: t.prefix,
    DATABASE_URL: dbUrl,
    PLAID_BASE_URL: plaidUrl,
    TOKEN_ENCRYPTION_KEYS: KEYS,
  });
  await waitUntil(
    'the plain handler',
    () => (proc.output().includes('ready') ? true : undefined),
    60_000,
  );
  // Count from the first outcome, so the group join is not charged to the handler.
  await waitUntil('a first outcome', () => (t.arrived.size > 0 ? true : undefined), 60_000).catch(
    (error: Error) => {
      throw new Error(`${error.message}; the plain handler said:\n${proc.output()}`);
    },
  );
  const start = Date.now();
  const before = t.arrived.size;
  await new Promise((r) => setTimeout(r, BASELINE_SECONDS * 1000));
  const done = t.arrived.size - before;
  await proc.stop();
  await t.close();
  return {
    seconds: BASELINE_SECONDS,
    outcomes: done,
    outcomes_per_s: Math.round((done / ((Date.now() - start) / 1000)) * 100) / 100,
  };
}

async function rateLimited(dbUrl: string) {
  const windowMs = LIMITED.windowMs;
  const box = await sandbox(LIMITED.items, {
    PLAID_SANDBOX_REFRESH_LATENCY: 'fixed:200',
    PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '2',
    PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '100',
    PLAID_SANDBOX_RATE_LIMIT_WINDOW_MS: String(windowMs),
  });
  const t = await topics(3);
  const proc = await worker({
    KAFKA_TOPIC_PREFIX: t.prefix,
    DATABASE_URL: dbUrl,
    PLAID_BASE_URL: box.url,
    PLAID_RATE_LIMIT_PER_ITEM: '2',
    PLAID_RATE_LIMIT_PER_CLIENT: '100',
    PLAID_RATE_LIMIT_WINDOW_MS: String(Math.round(windowMs * (61 / 60))),
  });
  const order = Array.from({ length: LIMITED.requests }, (_, i) => i % LIMITED.items);
  await t.publish(order);
  await waitUntil(
    'every outcome',
    () => (t.arrived.size >= LIMITED.requests ? true : undefined),
    30 * 60_000,
  );
  const leaders = [...t.arrived.values()]
    .filter((a) => a.leader)
    .map((a) => a.at)
    .sort((a, b) => a - b);
  const answers = await sandboxAnswers(box.url);
  await proc.stop();
  await t.close();
  await box.proc.stop();
  const calls = answers.none ?? 0;
  const actual = leaders[leaders.length - 1]! - leaders[0]!;
  // A perfect client makes `limit` calls at the start of each window.
  const ideal = windowMs * (Math.ceil(calls / 100) - 1);
  return {
    requests: LIMITED.requests,
    items: LIMITED.items,
    window_ms: windowMs,
    plaid_calls: calls,
    coalesced: LIMITED.requests - leaders.length,
    rate_limited_429: answers.RATE_LIMIT ?? 0,
    // Within one window the limit is never reached: nothing to measure.
    share_of_allowed_rate: ideal > 0 && actual > 0 ? Math.round((ideal / actual) * 1000) / 10 : 100,
  };
}

async function main() {
  const started = ensureInfra();
  const dbUrl = await benchDatabase();
  try {
    await registerTokens(dbUrl, THROUGHPUT_REQUESTS);
    const box = await sandbox(THROUGHPUT_REQUESTS, {
      PLAID_SANDBOX_REFRESH_LATENCY: 'fixed:2000',
      PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '1000000',
      PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '1000000',
    });
    const fast = await throughput(dbUrl, box.url);
    if (onlyThroughput) {
      process.stdout.write(`${JSON.stringify(fast)}\n`);
      return;
    }
    const defaultV8 = await throughput(dbUrl, box.url, []);
    const plain = await baseline(dbUrl, box.url);
    await box.proc.stop();
    const limited = await rateLimited(dbUrl);
    const ratio = Math.round(fast.outcomes_per_s / plain.outcomes_per_s);

    const result = {
      date: new Date().toISOString(),
      quick,
      machine: machine(),
      throughput: fast,
      throughput_default_v8: defaultV8,
      baseline: plain,
      ratio,
      rate_limited: limited,
    };
    const rows: (string | number)[][] = [
      ['measure', 'value', 'target'],
      ['worker outcomes/s (1000 in flight, 2 s Plaid)', fast.outcomes_per_s, '>= 400'],
      ['worker p50 / p99 request -> outcome (ms)', `${fast.p50_ms} / ${fast.p99_ms}`, ''],
      ['worker peak RSS (MB)', fast.peak_rss_mb, '< 300'],
      ['worker CPU (s)', fast.worker_cpu_s, ''],
      [
        'same, default V8 heap growth: outcomes/s, RSS MB, CPU s',
        `${defaultV8.outcomes_per_s}, ${defaultV8.peak_rss_mb}, ${defaultV8.worker_cpu_s}`,
        '',
      ],
      ['plain @EventPattern outcomes/s', plain.outcomes_per_s, ''],
      ['ratio worker / plain', `${ratio}x`, '>= 250x'],
      ['rate-limited: share of allowed rate (%)', limited.share_of_allowed_rate, '>= 95'],
      ['rate-limited: 429s from Plaid', limited.rate_limited_429, '0'],
      ['rate-limited: Plaid calls / requests', `${limited.plaid_calls} / ${limited.requests}`, ''],
    ];
    process.stdout.write(`\n${table(rows)}\n\n`);
    writeResults('refresh-worker', quick, result);
  } finally {
    await stopAll();
    await dropBenchDatabase(dbUrl).catch(() => undefined);
    stopInfra(started);
  }
}

runBench(main);
