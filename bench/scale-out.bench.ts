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
 */
import { dedicatedInfra } from '../test/faults/fault-system';
import {
  machine,
  percentile,
  processSampler,
  runBench,
  stopAll,
  table,
  waitUntil,
  writeResults,
} from './support';
import { registerTokens, sandbox, topics, worker } from './worker-setup';

const quick = process.argv.includes('--quick');
const REQUESTS = quick ? 3000 : 12_000;
const PROCESSES = [1, 2, 3];
/** Each worker's share of calls in flight: the throughput bench's 1,000 for one process. */
const IN_FLIGHT = 1000;

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

async function main() {
  const infra = await dedicatedInfra({ kafkaNodes: 3 });
  try {
    const brokers = infra.brokers.join(',');
    const dbUrl = await infra.database('scale_out');
    const items = REQUESTS * PROCESSES.length;
    await registerTokens(dbUrl, items);
    const box = await sandbox(items, {
      PLAID_SANDBOX_REFRESH_LATENCY: 'fixed:2000',
      PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '1000000',
      PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '1000000',
    });
    const runs = [];
    for (const processes of PROCESSES) runs.push(await run(brokers, dbUrl, box.url, processes));
    await box.proc.stop();

    const result = { date: new Date().toISOString(), quick, machine: machine(), brokers: 3, runs };
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
    process.stdout.write(`\n${table(rows)}\n\n`);
    writeResults('scale-out', quick, result);
  } finally {
    await stopAll();
    infra.remove();
  }
}

runBench(main);
