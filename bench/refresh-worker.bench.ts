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
 *    Then once more with Plaid answering after 10 s (1,000 calls in flight, so a ceiling of 100
 *    outcomes/s): the share of that ceiling reached when the worker's CPU is not the limit.
 * 2. baseline: the same work through a plain NestJS @EventPattern handler on NestJS's default
 *    Kafka transport, for a fixed time; the ratio of the two rates is reported.
 * 3. rate limits: the sandbox enforcing 100 calls/min per client and 2/min per Item, 2,000
 *    requests over 500 Items: the share of the allowed rate reached, and 429s seen.
 */
import {
  ensureInfra,
  machine,
  percentile,
  processSampler,
  run,
  stopAll,
  stopInfra,
  table,
  waitUntil,
  writeResults,
  benchDatabase,
  dropBenchDatabase,
  runBench,
} from './support';
import {
  KEYS,
  WORKER_NODE_FLAGS,
  registerTokens,
  sandbox,
  allowedRateShare,
  topics,
  worker,
} from './worker-setup';

const quick = process.argv.includes('--quick');
/** `--only=throughput` runs just the first scenario (for profiling memory). */
const onlyThroughput = process.argv.includes('--only=throughput');
const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:19092';

const THROUGHPUT_REQUESTS = quick ? 4000 : 20_000;
/** Calls in flight and the sandbox's answer time in the throughput runs. */
const IN_FLIGHT = 1000;
const PLAID_LATENCY_MS = 2000;
/**
 * The latency-bound run: Plaid's usual answer time ("usually under 10 s"), the same calls in
 * flight, so the ceiling (100 outcomes/s) is well below what the CPU allows here and the share
 * measures the worker's own scheduling: fetching, per-partition order, filling freed slots.
 */
const SLOW_PLAID_LATENCY_MS = 10_000;
const SLOW_REQUESTS = quick ? 3000 : 10_000;
const BASELINE_SECONDS = quick ? 20 : 40;
const LIMITED = quick
  ? { items: 300, requests: 1200, windowMs: 6000 }
  : { items: 500, requests: 2000, windowMs: 60_000 };

async function throughput(
  dbUrl: string,
  plaidUrl: string,
  nodeFlags = WORKER_NODE_FLAGS,
  shape = { requests: THROUGHPUT_REQUESTS, latencyMs: PLAID_LATENCY_MS },
) {
  const { requests, latencyMs } = shape;
  // The ceiling, whatever the partitions: with IN_FLIGHT calls out at once, each taking
  // latencyMs, no worker answers faster than this (Little's law).
  const ceiling = IN_FLIGHT / (latencyMs / 1000);
  const t = await topics(BROKERS, 3);
  const proc = await worker(
    BROKERS,
    {
      KAFKA_TOPIC_PREFIX: t.prefix,
      DATABASE_URL: dbUrl,
      PLAID_BASE_URL: plaidUrl,
      REFRESH_MAX_IN_FLIGHT: String(IN_FLIGHT),
      PLAID_RATE_LIMIT_PER_ITEM: '1000000',
      PLAID_RATE_LIMIT_PER_CLIENT: '1000000',
    },
    nodeFlags,
  );
  const sampler = processSampler(proc.child.pid!);
  const first = Date.now();
  await t.publish(Array.from({ length: requests }, (_, i) => i));
  await waitUntil(
    'every outcome',
    () => (t.arrived.size >= requests ? true : undefined),
    20 * 60_000,
  );
  sampler.stop();
  const last = Math.max(...[...t.arrived.values()].map((a) => a.at));
  const latencies = [...t.arrived]
    .map(([id, a]) => a.at - (t.sent.get(id) ?? a.at))
    .sort((a, b) => a - b);
  await proc.stop();
  await t.close();
  const seconds = (last - first) / 1000;
  const outcomesPerS = Math.round((requests / seconds) * 10) / 10;
  return {
    requests,
    plaid_latency_ms: latencyMs,
    outcomes_per_s: outcomesPerS,
    ceiling_outcomes_per_s: ceiling,
    share_of_ceiling_pct: Math.round((outcomesPerS / ceiling) * 1000) / 10,
    // How busy the worker was: well under one core means the CPU was not what limited it.
    worker_cpu_share_of_one_core_pct: Math.round((sampler.cpuSeconds / seconds) * 1000) / 10,
    p50_ms: percentile(latencies, 0.5),
    p99_ms: percentile(latencies, 0.99),
    peak_rss_mb: sampler.peakMb,
    worker_cpu_s: sampler.cpuSeconds,
    cpu_s_per_1000_outcomes: Math.round((sampler.cpuSeconds / requests) * 1000 * 1000) / 1000,
    // The same without the process's start-up (loading modules, connecting): the work's own cost.
    startup_cpu_s: sampler.startCpuSeconds,
    work_cpu_s_per_1000_outcomes:
      Math.round((sampler.cpuSecondsSinceStart / requests) * 1000 * 1000) / 1000,
    node_flags: nodeFlags.join(' '),
  };
}

async function baseline(dbUrl: string, plaidUrl: string) {
  const t = await topics(BROKERS, 3);
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
  const t = await topics(BROKERS, 3);
  const proc = await worker(BROKERS, {
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
  const share = await allowedRateShare(t.arrived, box.url, windowMs, 100);
  await proc.stop();
  await t.close();
  await box.proc.stop();
  return {
    requests: LIMITED.requests,
    items: LIMITED.items,
    window_ms: windowMs,
    plaid_calls: share.plaid_calls,
    coalesced: LIMITED.requests - share.leaders,
    rate_limited_429: share.rate_limited_429,
    share_of_allowed_rate: share.share_of_allowed_rate,
  };
}

async function main() {
  const started = ensureInfra();
  const dbUrl = await benchDatabase();
  try {
    await registerTokens(dbUrl, THROUGHPUT_REQUESTS);
    const box = await sandbox(THROUGHPUT_REQUESTS, {
      PLAID_SANDBOX_REFRESH_LATENCY: `fixed:${PLAID_LATENCY_MS}`,
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
    const slowBox = await sandbox(SLOW_REQUESTS, {
      PLAID_SANDBOX_REFRESH_LATENCY: `fixed:${SLOW_PLAID_LATENCY_MS}`,
      PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '1000000',
      PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '1000000',
    });
    const latencyBound = await throughput(dbUrl, slowBox.url, WORKER_NODE_FLAGS, {
      requests: SLOW_REQUESTS,
      latencyMs: SLOW_PLAID_LATENCY_MS,
    });
    await slowBox.proc.stop();
    const limited = await rateLimited(dbUrl);
    const ratio = Math.round(fast.outcomes_per_s / plain.outcomes_per_s);

    const result = {
      date: new Date().toISOString(),
      quick,
      machine: machine(),
      throughput: fast,
      throughput_default_v8: defaultV8,
      latency_bound: latencyBound,
      baseline: plain,
      ratio,
      rate_limited: limited,
    };
    const rows: (string | number)[][] = [
      ['measure', 'value', 'target'],
      [
        `worker outcomes/s (${IN_FLIGHT} in flight, ${PLAID_LATENCY_MS / 1000} s Plaid)`,
        fast.outcomes_per_s,
        '',
      ],
      [
        `ceiling: in flight / Plaid latency (outcomes/s); share (CPU-bound here)`,
        `${fast.ceiling_outcomes_per_s}; ${fast.share_of_ceiling_pct}%`,
        '',
      ],
      [
        `latency-bound: ${IN_FLIGHT} in flight, ${SLOW_PLAID_LATENCY_MS / 1000} s Plaid, ${SLOW_REQUESTS} requests: outcomes/s; share of ${latencyBound.ceiling_outcomes_per_s}`,
        `${latencyBound.outcomes_per_s}; ${latencyBound.share_of_ceiling_pct}%`,
        '>= 90%',
      ],
      [
        'latency-bound: worker CPU (share of one core)',
        `${latencyBound.worker_cpu_share_of_one_core_pct}%`,
        '',
      ],
      ['worker p50 / p99 request -> outcome (ms)', `${fast.p50_ms} / ${fast.p99_ms}`, ''],
      ['worker peak RSS (MB)', fast.peak_rss_mb, '< 200'],
      [
        'worker CPU (s); per 1,000 outcomes',
        `${fast.worker_cpu_s}; ${fast.cpu_s_per_1000_outcomes}`,
        '',
      ],
      [
        'worker CPU per 1,000 outcomes after start-up (s); start-up CPU (s)',
        `${fast.work_cpu_s_per_1000_outcomes}; ${fast.startup_cpu_s}`,
        '',
      ],
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
