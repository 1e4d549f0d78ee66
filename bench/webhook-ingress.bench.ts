/**
 * Webhook ingress benchmark: prints a table and writes bench/results/<date>-webhook-ingress.json.
 *
 *   npm run bench:ingress              # 30 s per run
 *   npm run bench:ingress -- --quick   # 5 s per run
 *   BENCH_INGRESS_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench:ingress -- --quick
 *
 * autocannon sends validly signed CASHFLOW_REPORT_READY webhooks (each with its own JWT, for its
 * own Item) over loopback to:
 *   - the ingress (dist/apps/webhook-ingress: its NestJS app and its public server), and
 *   - a bare node:http server (bench/bare-ingress) running the same pipeline: the same
 *     verification, the same replay ledger and the same durable Kafka send.
 * Each is run flat out (throughput) and at a fixed 500 webhooks/s (latency), each run on topics
 * of its own and after a few seconds of the same load as warm-up; afterwards the events on the
 * topic are counted against the 200s answered. The runs are made in rounds (`--rounds=N`,
 * default 2), the two servers' order swapped each round: whichever runs right after a flat-out
 * run meets a broker still busy with it, so a single order would favour one of them. The
 * figures compared are the rounds' means.
 * Plaid's verification keys come from a small key server in this process.
 */
import {
  ensureInfra,
  machine,
  processSampler,
  stopAll,
  stopInfra,
  table,
  writeResults,
  runBench,
} from './support';
import {
  keyServer,
  load,
  plaidKey,
  sign,
  start,
  storedIds,
  topics,
  type PlaidKey,
  type Target,
} from './webhook-setup';

const quick = process.argv.includes('--quick');
const ROUNDS = Number(
  /^--rounds=(\d+)$/.exec(process.argv.find((a) => a.startsWith('--rounds=')) ?? '')?.[1] ?? 2,
);
const DURATION_S = quick ? 5 : 30;
/** Load sent before each measured run, at the same rate, and left out of its figures. */
const WARMUP_S = quick ? 2 : 5;
const FIXED_RATE = 500;
/** Signed requests prepared per flat-out run: more than any run here has sent. */
const POOL = quick ? 60_000 : 400_000;
const CONNECTIONS = 64;
const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:19092';

async function scenario(
  round: number,
  target: Target,
  key: PlaidKey,
  plaidUrl: string,
  rate?: number,
) {
  const warmup = sign(key, rate ? rate * WARMUP_S + 1_000 : POOL / 4);
  const pool = sign(key, rate ? rate * DURATION_S + 2_000 : POOL);
  const prefix = await topics(BROKERS);
  const { proc, url } = await start(target, BROKERS, prefix, plaidUrl);
  // Warm-up: the same load for a few seconds first, so neither server is measured while its
  // code is still being compiled. Its events are left out of the counts below.
  const connections = rate ? 32 : CONNECTIONS;
  const warm = await load(url, warmup, WARMUP_S, { rate, connections });
  const sampler = processSampler(proc.child.pid!);
  const { result, answered, wrapped } = await load(url, pool, DURATION_S, { rate, connections });
  sampler.stop();
  await proc.stop();
  const ok = result['2xx'];
  const ids = await storedIds(BROKERS, prefix);
  for (const id of warm.answered) ids.delete(id);
  const lost = [...answered].filter((id) => !ids.has(id)).length;
  return {
    round,
    target,
    mode: rate ? `${rate}/s` : 'flat out',
    webhooks_per_s: Math.round((ok / DURATION_S) * 10) / 10,
    answered_200: ok,
    non_2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    events_on_topic: ids.size,
    // Answered 200 but not on the topic. (Events beyond the 200s are requests still in flight
    // when the run ended: stored, their answers not counted.)
    lost,
    pool_exhausted: wrapped,
    peak_rss_mb: sampler.peakMb,
    // The measured run's CPU only: not the process's start-up (NestJS's is the heavier) or
    // warm-up.
    cpu_s: sampler.cpuSecondsSinceStart,
    cpu_s_per_1000_webhooks:
      ok > 0 ? Math.round((sampler.cpuSecondsSinceStart / ok) * 1000 * 1000) / 1000 : null,
  };
}

async function main() {
  const started = ensureInfra();
  const key = plaidKey();
  const plaid = await keyServer(key);
  try {
    const runs: Awaited<ReturnType<typeof scenario>>[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const order: Target[] = round % 2 === 1 ? ['ingress', 'bare'] : ['bare', 'ingress'];
      for (const target of order) runs.push(await scenario(round, target, key, plaid.url));
      for (const target of order) {
        runs.push(await scenario(round, target, key, plaid.url, FIXED_RATE));
      }
    }
    const of = (target: Target, fixed: boolean) =>
      runs.filter((r) => r.target === target && (r.mode === 'flat out') !== fixed);
    const mean = (values: number[]) =>
      Math.round((values.reduce((s, v) => s + v, 0) / values.length) * 10) / 10;
    const flat = {
      ingress_webhooks_per_s: mean(of('ingress', false).map((r) => r.webhooks_per_s)),
      bare_webhooks_per_s: mean(of('bare', false).map((r) => r.webhooks_per_s)),
    };
    const p99 = {
      ingress: mean(of('ingress', true).map((r) => r.p99_ms)),
      bare: mean(of('bare', true).map((r) => r.p99_ms)),
    };
    const share = Math.round((flat.ingress_webhooks_per_s / flat.bare_webhooks_per_s) * 1000) / 10;
    const result = {
      date: new Date().toISOString(),
      quick,
      duration_s: DURATION_S,
      machine: machine(),
      rounds: ROUNDS,
      runs,
      flat_out_mean: flat,
      p99_at_fixed_rate_mean_ms: p99,
      share_of_bare_pct: share,
      // A profiled run is slower: the comparison with earlier runs should know.
      node_flags: process.env.BENCH_INGRESS_NODE_FLAGS ?? '',
    };

    const rows: (string | number)[][] = [
      [
        'round',
        'run',
        'webhooks/s',
        'p50 / p99 ms',
        '200s',
        'events',
        'lost',
        'non-2xx',
        'RSS MB',
        'CPU s',
        'CPU ms/webhook',
      ],
      ...runs.map((r) => [
        r.round,
        `${r.target} ${r.mode}`,
        r.webhooks_per_s,
        `${r.p50_ms} / ${r.p99_ms}`,
        r.answered_200,
        r.events_on_topic,
        r.lost,
        r.non_2xx + r.errors,
        r.peak_rss_mb,
        r.cpu_s,
        r.cpu_s_per_1000_webhooks ?? '',
      ]),
    ];
    const targets: (string | number)[][] = [
      ['measure', 'value', 'target'],
      [
        `flat out, mean of ${ROUNDS} rounds: ingress / bare webhooks/s`,
        `${flat.ingress_webhooks_per_s} / ${flat.bare_webhooks_per_s}`,
        '',
      ],
      ['ingress throughput / bare node:http (%)', share, '>= 90'],
      [`ingress p99 at ${FIXED_RATE}/s (ms, mean of rounds)`, p99.ingress, '< 50'],
      [`bare p99 at ${FIXED_RATE}/s (ms, mean of rounds)`, p99.bare, ''],
      ['webhooks lost (answered 200, not on the topic)', runs.reduce((s, r) => s + r.lost, 0), '0'],
    ];
    if (runs.some((r) => r.pool_exhausted)) {
      targets.push(['WARNING: a run sent more than its signed pool (duplicates)', 'yes', 'no']);
    }
    process.stdout.write(`\n${table(rows)}\n\n${table(targets)}\n\n`);
    writeResults('webhook-ingress', quick, result);
  } finally {
    plaid.server.close();
    await stopAll();
    stopInfra(started);
  }
}

runBench(main);
