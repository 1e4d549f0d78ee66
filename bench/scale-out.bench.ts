/**
 * Scale-out benchmark: prints a table and writes bench/results/<date>-scale-out.json.
 *
 *   npm run bench:scale-out              # 12,000 requests per run
 *   npm run bench:scale-out -- --quick   # 3,000
 *
 * The refresh worker as 1, 2 and 3 processes in one consumer group, on a three-broker cluster of
 * the bench's own (replication factor 3, min.insync.replicas 2, 6 partitions), the Plaid sandbox
 * answering every refresh after a fixed 2 s, rate limits off. Each run publishes its requests for
 * Items of its own and waits for every outcome. On 2 cores the outcomes/s flatten once the CPU is
 * full (the brokers, PostgreSQL and the sandbox share it), so the CPU seconds the workers spent
 * per 1,000 outcomes are reported too: flat, that figure says replicas cost nothing extra.
 *
 * Then one Plaid budget for the deployment: three workers against a sandbox enforcing 100 calls
 * a window per client (and 2 per Item), one of them killed halfway: the share of the allowed
 * rate the three reach together, and the 429s Plaid answered (none expected: the workers take
 * their turns from one window in PostgreSQL, and a dead worker's turns leave it with time).
 *
 * Then the webhook ingress as 1 and 2 processes on the same cluster, flat out: autocannon sends
 * signed webhooks to each process (half the connections each with two, as a balancer would
 * spread them), after a warm-up; webhooks/s answered 200, the ingress CPU seconds per 1,000, and
 * any answered 200 but missing from the report topic.
 */
import { dedicatedInfra } from '../test/faults/fault-system';
import {
  machine,
  percentile,
  processSampler,
  runBench,
  deleteBenchTopics,
  stopAll,
  table,
  waitUntil,
  writeResults,
} from './support';
import {
  keyServer,
  load,
  plaidKey,
  sign,
  start,
  storedIds,
  topics as webhookTopics,
} from './webhook-setup';
import { allowedRateShare, registerTokens, sandbox, topics, worker } from './worker-setup';

const quick = process.argv.includes('--quick');
/** `--only=budget` runs just the shared-budget run. */
const onlyBudget = process.argv.includes('--only=budget');
/** `--no-kill`: the shared-budget run keeps all three workers (to tell the kill's cost apart). */
const noKill = process.argv.includes('--no-kill');
const REQUESTS = quick ? 3000 : 12_000;
const PROCESSES = [1, 2, 3];
/** Each worker's share of calls in flight: the throughput bench's 1,000 for one process. */
const IN_FLIGHT = 1000;
const INGRESS_PROCESSES = [1, 2];
const LIMITED = quick
  ? { items: 300, requests: 1200, windowMs: 20_000 }
  : { items: 500, requests: 2000, windowMs: 60_000 };
const INGRESS_SECONDS = quick ? 5 : 20;
const WARMUP_SECONDS = quick ? 2 : 5;
const CONNECTIONS = 64;

async function run(brokers: string, dbUrl: string, plaidUrl: string, processes: number) {
  const t = await topics(brokers, 6, 3);
  const env = {
    KAFKA_TOPIC_PREFIX: t.prefix,
    DATABASE_URL: dbUrl,
    PLAID_BASE_URL: plaidUrl,
    REFRESH_MAX_IN_FLIGHT: String(IN_FLIGHT),
    PLAID_RATE_LIMIT_PER_ITEM: '1000000',
    PLAID_RATE_LIMIT_PER_CLIENT: '1000000',
  };
  const procs = [];
  for (let i = 0; i < processes; i++) procs.push(await worker(brokers, env));
  // Let the group settle: the last join rebalances every member.
  await new Promise((resolve) => setTimeout(resolve, 5000));
  const samplers = procs.map((p) => processSampler(p.child.pid!));
  const offset = (processes - 1) * REQUESTS;
  const first = Date.now();
  await t.publish(Array.from({ length: REQUESTS }, (_, i) => offset + i));
  await waitUntil(
    `every outcome with ${processes} workers`,
    () => (t.arrived.size >= REQUESTS ? true : undefined),
    20 * 60_000,
  );
  samplers.forEach((s) => s.stop());
  const last = Math.max(...[...t.arrived.values()].map((a) => a.at));
  const latencies = [...t.arrived]
    .map(([id, a]) => a.at - (t.sent.get(id) ?? a.at))
    .sort((a, b) => a - b);
  await Promise.all(procs.map((p) => p.stop()));
  await t.close();
  const cpu = samplers.reduce((sum, s) => sum + s.cpuSeconds, 0);
  return {
    processes,
    requests: REQUESTS,
    outcomes_per_s: Math.round((REQUESTS / (last - first)) * 1000 * 10) / 10,
    p50_ms: percentile(latencies, 0.5),
    p99_ms: percentile(latencies, 0.99),
    worker_cpu_s: Math.round(cpu * 10) / 10,
    cpu_s_per_1000_outcomes: Math.round((cpu / REQUESTS) * 1000 * 100) / 100,
    peak_rss_mb_per_process: Math.max(...samplers.map((s) => s.peakMb)),
  };
}

/** Items of the shared-budget run, after those of the throughput runs. */
const LIMITED_FIRST_ITEM = REQUESTS * PROCESSES.length;

async function sharedBudget(brokers: string, dbUrl: string) {
  const windowMs = LIMITED.windowMs;
  const ids = Array.from({ length: LIMITED.items }, (_, i) => LIMITED_FIRST_ITEM + i);
  const box = await sandbox(LIMITED_FIRST_ITEM + LIMITED.items, {
    PLAID_SANDBOX_REFRESH_LATENCY: 'fixed:200',
    PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '2',
    PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '100',
    PLAID_SANDBOX_RATE_LIMIT_WINDOW_MS: String(windowMs),
  });
  const t = await topics(brokers, 6, 3);
  const env = {
    KAFKA_TOPIC_PREFIX: t.prefix,
    DATABASE_URL: dbUrl,
    PLAID_BASE_URL: box.url,
    PLAID_RATE_LIMIT_PER_ITEM: '2',
    PLAID_RATE_LIMIT_PER_CLIENT: '100',
    // The sandbox's window and a second, as the default (61 s) is Plaid's minute and a second: a
    // call reaches Plaid a little after its turn (its claim is written in between), and turns
    // taken at the end of one window and the start of the next must not land within one of
    // Plaid's. With a tenth of a second (the window scaled down with the second), three workers
    // got 31 429s in 300 calls.
    PLAID_RATE_LIMIT_WINDOW_MS: String(windowMs + 1000),
  };
  const procs = [];
  for (let i = 0; i < 3; i++) procs.push(await worker(brokers, env));
  await new Promise((resolve) => setTimeout(resolve, 5000));
  await t.publish(Array.from({ length: LIMITED.requests }, (_, i) => ids[i % ids.length]!));
  await waitUntil(
    'half the outcomes',
    () => (t.arrived.size >= LIMITED.requests / 2 ? true : undefined),
    30 * 60_000,
  );
  if (!noKill) await procs[2]!.stop('SIGKILL');
  const killedAt = Date.now();
  await waitUntil(
    'every outcome',
    () => (t.arrived.size >= LIMITED.requests ? true : undefined),
    30 * 60_000,
  );
  const share = await allowedRateShare(t.arrived, box.url, windowMs, 100);
  await Promise.all(procs.slice(0, noKill ? 3 : 2).map((p) => p.stop()));
  await t.close();
  await box.proc.stop();
  return {
    workers: 3,
    killed_after_s: noKill ? null : Math.round((killedAt - share.firstLeaderAt) / 100) / 10,
    requests: LIMITED.requests,
    window_ms: windowMs,
    plaid_calls: share.plaid_calls,
    rate_limited_429: share.rate_limited_429,
    share_of_allowed_rate: share.share_of_allowed_rate,
  };
}

async function ingress(
  brokers: string,
  plaidUrl: string,
  key: ReturnType<typeof plaidKey>,
  processes: number,
) {
  const prefix = await webhookTopics(brokers, 3);
  const started = [];
  for (let i = 0; i < processes; i++)
    started.push(await start('ingress', brokers, prefix, plaidUrl));
  const connections = CONNECTIONS / processes;
  const perProcess = Math.ceil((quick ? 60_000 : 200_000) / processes);
  await Promise.all(
    started.map(({ url }) => load(url, sign(key, perProcess / 4), WARMUP_SECONDS, { connections })),
  );
  const warmIds = await storedIds(brokers, prefix);
  const samplers = started.map(({ proc }) => processSampler(proc.child.pid!));
  const pools = started.map(() => sign(key, perProcess));
  const runs = await Promise.all(
    started.map(({ url }, i) => load(url, pools[i]!, INGRESS_SECONDS, { connections })),
  );
  samplers.forEach((s) => s.stop());
  await Promise.all(started.map(({ proc }) => proc.stop()));
  const ids = await storedIds(brokers, prefix);
  const ok = runs.reduce((sum, r) => sum + r.result['2xx'], 0);
  const lost = runs.reduce(
    (sum, r) => sum + [...r.answered].filter((id) => !ids.has(id) && !warmIds.has(id)).length,
    0,
  );
  const cpu = samplers.reduce((sum, s) => sum + s.cpuSeconds, 0);
  return {
    processes,
    webhooks_per_s: Math.round((ok / INGRESS_SECONDS) * 10) / 10,
    answered_200: ok,
    non_2xx: runs.reduce((sum, r) => sum + r.result.non2xx + r.result.errors, 0),
    p99_ms: Math.max(...runs.map((r) => r.result.latency.p99)),
    ingress_cpu_s: Math.round(cpu * 10) / 10,
    cpu_s_per_1000_webhooks: ok > 0 ? Math.round((cpu / ok) * 1000 * 100) / 100 : null,
    lost,
    pool_exhausted: runs.some((r) => r.wrapped),
  };
}

async function main() {
  const infra = await dedicatedInfra({ kafkaNodes: 3 });
  try {
    const brokers = infra.brokers.join(',');
    const dbUrl = await infra.database('scale_out');
    const items = REQUESTS * PROCESSES.length;
    await registerTokens(dbUrl, items + LIMITED.items);
    const budget = await sharedBudget(brokers, dbUrl);
    process.stdout.write(`${JSON.stringify(budget)}\n`);
    if (onlyBudget) return;
    const box = await sandbox(items, {
      PLAID_SANDBOX_REFRESH_LATENCY: 'fixed:2000',
      PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '1000000',
      PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '1000000',
    });
    const runs = [];
    for (const processes of PROCESSES) {
      runs.push(await run(brokers, dbUrl, box.url, processes));
      process.stdout.write(`${JSON.stringify(runs.at(-1))}\n`);
    }
    await box.proc.stop();
    const key = plaidKey();
    const keys = await keyServer(key);
    const ingressRuns = [];
    try {
      for (const processes of INGRESS_PROCESSES) {
        ingressRuns.push(await ingress(brokers, keys.url, key, processes));
        process.stdout.write(`${JSON.stringify(ingressRuns.at(-1))}\n`);
      }
    } finally {
      keys.server.close();
    }

    const result = {
      date: new Date().toISOString(),
      quick,
      machine: machine(),
      brokers: 3,
      runs,
      shared_budget: budget,
      ingress: ingressRuns,
    };
    const rows: (string | number)[][] = [
      [
        'worker processes',
        'outcomes/s',
        'p50 / p99 ms',
        'worker CPU s',
        'CPU s per 1,000 outcomes',
        'peak RSS MB (largest process)',
      ],
      ...runs.map((r) => [
        r.processes,
        r.outcomes_per_s,
        `${r.p50_ms} / ${r.p99_ms}`,
        r.worker_cpu_s,
        r.cpu_s_per_1000_outcomes,
        r.peak_rss_mb_per_process,
      ]),
    ];
    const ingressRows: (string | number)[][] = [
      [
        'ingress processes',
        'webhooks/s',
        'p99 ms',
        'ingress CPU s',
        'CPU s per 1,000 webhooks',
        'lost',
      ],
      ...ingressRuns.map((r) => [
        r.processes,
        r.webhooks_per_s,
        r.p99_ms,
        r.ingress_cpu_s,
        r.cpu_s_per_1000_webhooks ?? '-',
        r.lost,
      ]),
    ];
    const budgetRows: (string | number)[][] = [
      ['shared budget, 3 workers (one killed halfway)', 'value', 'target'],
      ['share of the allowed rate (%)', budget.share_of_allowed_rate, '>= 90'],
      ['429s from Plaid', budget.rate_limited_429, '0'],
      ['Plaid calls / requests', `${budget.plaid_calls} / ${budget.requests}`, ''],
    ];
    process.stdout.write(`\n${table(rows)}\n\n${table(budgetRows)}\n\n${table(ingressRows)}\n\n`);
    writeResults('scale-out', quick, result);
  } finally {
    await stopAll();
    await deleteBenchTopics();
    infra.remove();
  }
}

runBench(main);
