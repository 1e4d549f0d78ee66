/**
 * Soak: the whole system (sandbox, worker, ingress, projector, each its own process) on the local
 * Kafka and PostgreSQL at a steady mixed load, sampled every interval: throughput, consumer lag
 * and each process's RSS; at the end p50/p99 latency per stage and the RSS slope (MiB per minute,
 * fitted over the second half, after warm-up) to show whether memory grows without bound.
 *
 *   npm run soak                         # 10 minutes at 30 requests/s over 600 Items
 *   npm run soak -- --minutes 60 --rate 50
 *   npm run soak -- --quick              # 2 minutes (the form `npm run bench` runs)
 *   npm run soak -- --in-flight 2000     # the worker's REFRESH_MAX_IN_FLIGHT
 */
import { histogramQuantiles } from './histogram';
import {
  createEvent,
  decodeEvent,
  topicName,
  type CashflowEvent,
  type RefreshRequested,
} from '@cashflow/contracts';
import { EventPublisher, createKafka, ensureTopics, fetchEndOffsets } from '@cashflow/kafka';
import { createLogger } from '@cashflow/observability';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import {
  benchPrefix,
  benchDatabase,
  dropBenchDatabase,
  ensureInfra,
  freePort,
  machine,
  percentile,
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

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  const value = at >= 0 ? Number(args[at + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
};
const quick = args.includes('--quick');
const minutes = flag('minutes', quick ? 2 : 10);
const rate = flag('rate', 30);
const itemCount = flag('items', 600);
/** The worker's REFRESH_MAX_IN_FLIGHT (`--in-flight`); its own default when not given. */
const inFlight = args.includes('--in-flight') ? flag('in-flight', 500) : undefined;
const intervalMs = minutes <= 2 ? 5000 : 10_000;

const APPS = ['plaid-sandbox', 'refresh-worker', 'webhook-ingress', 'projector'] as const;
type App = (typeof APPS)[number];

function rssMb(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Math.round(Number(match?.[1] ?? 0) / 1024);
  } catch {
    return Number.NaN;
  }
}

/** Least-squares slope of y over x. */
function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

const stats = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50_ms: Math.round(percentile(sorted, 0.5)),
    p99_ms: Math.round(percentile(sorted, 0.99)),
  };
};

/**
 * Plaid's per-Item pace as the worker keeps it by default (2 calls a minute): a call cannot leave
 * sooner than this after the Item's previous one.
 */
const ITEM_SPACING_MS = 30_000;

/** What a request went through on its way to its outcome, as the outcome tells. */
type OutcomeCause =
  | 'own call, at once'
  | 'own call, after the Item’s window (Plaid’s 2 calls a minute)'
  | 'own call, retried'
  | 'joined another request’s call'
  | 'failed';

/**
 * `sent`: when the request was published; `lastCall`: when Plaid answered the Item's call before
 * this outcome's (a request sent within the spacing after it waited for the Item's window).
 */
function outcomeCause(event: CashflowEvent, sent: number, lastCall?: number): OutcomeCause {
  if (event.type === 'RefreshFailed') return 'failed';
  if (event.type !== 'RefreshAccepted') throw new Error(`not an outcome: ${event.type}`);
  if (event.data.coalesced_into) return 'joined another request’s call';
  if (event.data.attempts > 1) return 'own call, retried';
  return lastCall !== undefined && sent < lastCall + ITEM_SPACING_MS
    ? 'own call, after the Item’s window (Plaid’s 2 calls a minute)'
    : 'own call, at once';
}

interface SandboxDelivery {
  readonly item_id: string;
  readonly webhook_code: string;
  readonly created_at: string;
  readonly attempts: readonly {
    readonly at: string;
    readonly status: number | null;
    readonly error: string | null;
  }[];
}

/**
 * How the webhook that brought a report went: the sandbox's CASHFLOW_REPORT_READY delivery for
 * the Item made between the call's acceptance and the report landing, by its attempts (a first
 * attempt refused or timed out names its cause).
 */
function reportCause(
  pair: { itemId: string; acceptedAt: number; reportAt: number },
  deliveries: readonly SandboxDelivery[],
): string {
  const delivery = deliveries.find(
    (d) =>
      d.item_id === pair.itemId &&
      d.webhook_code === 'CASHFLOW_REPORT_READY' &&
      Date.parse(d.created_at) >= pair.acceptedAt - 1000 &&
      Date.parse(d.created_at) <= pair.reportAt,
  );
  if (!delivery) return 'no webhook found (log full, or made before the acceptance)';
  const first = delivery.attempts[0];
  if (delivery.attempts.length <= 1) return 'webhook delivered at its first attempt';
  // Ports and addresses in an error message would make every line a cause of its own.
  const why = first?.status
    ? `answered ${first.status}`
    : (first?.error?.replace(/[\d.:]{2,}/g, '…') ?? 'no answer');
  return `webhook retried (first attempt: ${why})`;
}

async function main() {
  const startedInfra = ensureInfra();
  const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');
  const prefix = benchPrefix(brokers, 'soak');
  const logger = createLogger({ service: 'soak', level: 'error' });
  const kafka = createKafka({ brokers, clientId: 'soak', topicPrefix: prefix, logger });
  await ensureTopics(kafka, { prefix, partitions: 6, replicationFactor: 1 });
  const databaseUrl = await benchDatabase();
  const adminToken = randomBytes(24).toString('hex');
  const port = {
    sandbox: await freePort(),
    worker: await freePort(),
    ingress: await freePort(),
    ingressAdmin: await freePort(),
    projector: await freePort(),
  };
  const common = {
    KAFKA_BROKERS: brokers.join(','),
    KAFKA_TOPIC_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    PLAID_ENV: 'local',
    PLAID_SANDBOX_PORT: String(port.sandbox),
  };
  const procs = {} as Record<App, Proc>;
  const start = async (app: App, env: Record<string, string>, health: string) => {
    procs[app] = run(`apps/${app}/src/main.js`, { ...common, ...env });
    await waitForHttp(health, procs[app]);
  };
  const webhookUrl = `http://127.0.0.1:${port.ingress}/webhooks/plaid`;
  // Plaid-like latency and extraction; Plaid's per-Item pace (2 calls a minute), no client cap.
  await start(
    'plaid-sandbox',
    {
      PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '1000000',
      PLAID_SANDBOX_DELIVERY_LOG_LIMIT: '20000',
    },
    `http://127.0.0.1:${port.sandbox}/health/ready`,
  );
  await start(
    'refresh-worker',
    {
      DATABASE_URL: databaseUrl,
      REFRESH_WORKER_PORT: String(port.worker),
      TOKEN_ENCRYPTION_KEYS: `soak:${randomBytes(32).toString('base64')}`,
      ADMIN_API_TOKENS: `soak:${adminToken}`,
      PLAID_RATE_LIMIT_PER_CLIENT: '1000000',
      ...(inFlight ? { REFRESH_MAX_IN_FLIGHT: String(inFlight) } : {}),
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
      DATABASE_URL: databaseUrl,
      PROJECTOR_PORT: String(port.projector),
      PROJECTOR_API_TOKENS: `soak:${randomBytes(24).toString('hex')}`,
    },
    `http://127.0.0.1:${port.projector}/health/ready`,
  );

  // Items: 90% healthy, 5% needing a new login, 5% whose reports carry an error.
  const items: string[] = [];
  for (let i = 0; i < itemCount; i += 1) {
    const behaviour =
      i % 20 === 0
        ? { kind: 'item_login_required' }
        : i % 20 === 1
          ? { kind: 'webhook_error', error_code: 'INSTITUTION_NOT_RESPONDING' }
          : { kind: 'success' };
    const created = await fetch(`http://127.0.0.1:${port.sandbox}/sandbox/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ webhook: webhookUrl, transactions_per_account: 5, behaviour }),
    }).then((r) => r.json() as Promise<{ item: { item_id: string; access_token: string } }>);
    const put = await fetch(
      `http://127.0.0.1:${port.worker}/items/${created.item.item_id}/access-token`,
      {
        method: 'PUT',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ access_token: created.item.access_token }),
      },
    );
    if (!put.ok) throw new Error(`registering a token: ${put.status}`);
    items.push(created.item.item_id);
  }

  // Observe outcomes and reports as they land.
  const sentAt = new Map<string, number>();
  /** Per Item, when its oldest call not yet reported was accepted (Kafka time). */
  const acceptedAt = new Map<string, number>();
  const latency = { request_to_outcome: [] as number[], accepted_to_report: [] as number[] };
  const outcomesByCause = new Map<OutcomeCause, number[]>();
  /** Per Item, when Plaid answered its latest call (a leader's accepted_at). */
  const lastCallAt = new Map<string, number>();
  const reported: { itemId: string; acceptedAt: number; reportAt: number }[] = [];
  let outcomes = 0;
  let reports = 0;
  const observer = kafka.consumer({ groupId: `${prefix}observer`, maxWaitTimeInMs: 200 });
  await observer.connect();
  await observer.subscribe({
    topics: [topicName('refreshOutcomes', prefix), topicName('reportOutcomes', prefix)],
    fromBeginning: true,
  });
  await observer.run({
    eachMessage: async ({ message }) => {
      const decoded = decodeEvent(message);
      if (!decoded.ok) return;
      const event: CashflowEvent = decoded.value;
      const at = Number(message.timestamp);
      if (event.type === 'RefreshAccepted' || event.type === 'RefreshFailed') {
        outcomes += 1;
        const requestId = event.metadata.correlationId ?? '';
        const sent = sentAt.get(requestId);
        if (sent !== undefined) {
          latency.request_to_outcome.push(at - sent);
          const cause = outcomeCause(event, sent, lastCallAt.get(event.data.item_id));
          outcomesByCause.set(cause, [...(outcomesByCause.get(cause) ?? []), at - sent]);
          sentAt.delete(requestId);
        }
        // Only a call's leader stands for a Plaid call, and so for a report to come: a request
        // answered by a call made earlier (coalesced into it) gets no report of its own, and
        // pairing it with the Item's next report would count the time to the next call.
        if (event.type === 'RefreshAccepted' && !event.data.coalesced_into) {
          lastCallAt.set(event.data.item_id, Date.parse(event.data.accepted_at));
          if (!acceptedAt.has(event.data.item_id)) acceptedAt.set(event.data.item_id, at);
        }
      } else if (event.type === 'ReportReady' || event.type === 'ReportFailed') {
        reports += 1;
        const accepted = acceptedAt.get(event.data.item_id);
        if (accepted !== undefined) {
          latency.accepted_to_report.push(at - accepted);
          reported.push({ itemId: event.data.item_id, acceptedAt: accepted, reportAt: at });
          acceptedAt.delete(event.data.item_id);
        }
      }
      await Promise.resolve();
    },
  });

  const admin = kafka.admin();
  await admin.connect();
  const sql = new Client({ connectionString: databaseUrl });
  await sql.connect();
  const requestedTopic = topicName('refreshRequested', prefix);
  const ends = async (topic: string) =>
    new Map(
      [...(await fetchEndOffsets(admin, [topic])).values()].map((p) => [
        p.partition,
        Number(p.high),
      ]),
    );
  async function lag() {
    const end = await ends(requestedTopic);
    const [group] = await admin.fetchOffsets({
      groupId: `${prefix}cashflow-refresh-worker`,
      topics: [requestedTopic],
    });
    let worker = 0;
    for (const p of group?.partitions ?? []) {
      worker += Math.max(0, (end.get(p.partition) ?? 0) - Math.max(0, Number(p.offset)));
    }
    let projector = 0;
    const { rows } = await sql.query<{ topic: string; partition: number; next_offset: string }>(
      `SELECT topic, partition, next_offset FROM consumer_checkpoints WHERE consumer = 'projector'`,
    );
    const topicEnds = new Map<string, Map<number, number>>();
    for (const key of ['refreshRequested', 'refreshOutcomes', 'reportOutcomes'] as const) {
      topicEnds.set(topicName(key, prefix), await ends(topicName(key, prefix)));
    }
    for (const [topic, partitions] of topicEnds) {
      for (const [partition, high] of partitions) {
        const row = rows.find((r) => r.topic === topic && r.partition === partition);
        projector += Math.max(0, high - Number(row?.next_offset ?? 0));
      }
    }
    return { worker, projector };
  }

  // The load: `rate` requests a second, spread over the Items, days varied.
  const publisher = new EventPublisher(kafka, prefix);
  await publisher.connect();
  let published = 0;
  let stopLoad = false;
  const load = (async () => {
    const tickMs = 100;
    let due = 0;
    while (!stopLoad) {
      const tickStarted = Date.now();
      due += (rate * tickMs) / 1000;
      const batch: RefreshRequested[] = [];
      for (; due >= 1; due -= 1, published += 1) {
        const id = randomUUID();
        sentAt.set(id, Date.now());
        batch.push(
          createEvent(
            'RefreshRequested',
            {
              item_id: items[Math.floor(Math.random() * items.length)]!,
              days_requested: [30, 90, 365][published % 3]!,
              requested_by: 'soak',
            },
            { id, source: 'urn:cashflow-refresh:soak', time: new Date().toISOString() },
          ),
        );
      }
      if (batch.length) await publisher.publish(...batch);
      await sleep(Math.max(0, tickMs - (Date.now() - tickStarted)));
    }
  })();

  const samples: {
    t_s: number;
    published: number;
    outcomes: number;
    reports: number;
    worker_lag: number;
    projector_lag: number;
    rss_mb: Record<App, number>;
  }[] = [];
  const began = Date.now();
  const header = [
    't (s)',
    'requests',
    'outcomes/s',
    'reports/s',
    'worker lag',
    'projector lag',
    ...APPS.map((a) => `${a} MiB`),
  ];
  process.stdout.write(
    `soak: ${minutes} min at ${rate}/s over ${itemCount} Items (sampled every ${intervalMs / 1000} s)\n`,
  );
  while (Date.now() - began < minutes * 60_000) {
    await sleep(intervalMs);
    const { worker, projector } = await lag();
    const sample = {
      t_s: Math.round((Date.now() - began) / 1000),
      published,
      outcomes,
      reports,
      worker_lag: worker,
      projector_lag: projector,
      rss_mb: Object.fromEntries(APPS.map((a) => [a, rssMb(procs[a].child.pid!)])) as Record<
        App,
        number
      >,
    };
    const previous = samples.at(-1);
    const dt = sample.t_s - (previous?.t_s ?? 0) || 1;
    samples.push(sample);
    process.stdout.write(
      `${table([
        header,
        [
          sample.t_s,
          published,
          ((outcomes - (previous?.outcomes ?? 0)) / dt).toFixed(1),
          ((reports - (previous?.reports ?? 0)) / dt).toFixed(1),
          worker,
          projector,
          ...APPS.map((a) => sample.rss_mb[a]),
        ],
      ])
        .split('\n')
        .slice(samples.length === 1 ? 0 : 1)
        .join('\n')}\n`,
    );
  }
  stopLoad = true;
  await load;
  const loadS = (Date.now() - began) / 1000;
  await publisher.disconnect();
  // Let the last requests be answered before measuring the projection.
  await waitUntil(
    'the last outcomes',
    () => (outcomes >= published ? true : undefined),
    120_000,
  ).catch(() => undefined);

  const deliveries = (await fetch(`http://127.0.0.1:${port.sandbox}/sandbox/webhooks`)
    .then((r) => r.json() as Promise<{ deliveries: SandboxDelivery[] }>)
    .then((b) => b.deliveries)
    .catch(() => [])) as SandboxDelivery[];
  const reportsByCause = new Map<string, number[]>();
  for (const pair of reported) {
    const cause = reportCause(pair, deliveries);
    reportsByCause.set(cause, [
      ...(reportsByCause.get(cause) ?? []),
      pair.reportAt - pair.acceptedAt,
    ]);
  }

  // How long Plaid (the sandbox) took to answer the worker's calls: an own call made at once
  // still waits this long for its outcome.
  const plaidCall = histogramQuantiles(
    await fetch(`http://127.0.0.1:${port.worker}/metrics`)
      .then((r) => r.text())
      .catch(() => ''),
    'plaid_refresh_call_seconds',
    [0.5, 0.99],
  );

  const projected = await sql.query<{ event_type: string; ms: number }>(
    `SELECT event_type, extract(epoch FROM projected_at - kafka_timestamp) * 1000 AS ms
       FROM projection_events WHERE event_type IN ('RefreshAccepted', 'ReportReady')`,
  );
  const secondHalf = samples.filter((s) => s.t_s >= (minutes * 60) / 2);
  const result = {
    date: new Date().toISOString(),
    quick,
    machine: machine(),
    settings: {
      minutes,
      rate_per_s: rate,
      items: itemCount,
      interval_s: intervalMs / 1000,
      worker_max_in_flight: inFlight ?? 'default',
    },
    totals: {
      requests: published,
      outcomes,
      reports,
      // Over the load's duration: the drain afterwards is not part of the steady state.
      requests_per_s: Math.round((published / loadS) * 10) / 10,
      outcomes_per_s: Math.round((outcomes / loadS) * 10) / 10,
      reports_per_s: Math.round((reports / loadS) * 10) / 10,
      unanswered_at_end: published - outcomes,
    },
    latency: {
      request_to_outcome: stats(latency.request_to_outcome),
      accepted_to_report: stats(latency.accepted_to_report),
      outcome_to_projected: stats(
        projected.rows.filter((r) => r.event_type === 'RefreshAccepted').map((r) => Number(r.ms)),
      ),
      report_to_projected: stats(
        projected.rows.filter((r) => r.event_type === 'ReportReady').map((r) => Number(r.ms)),
      ),
    },
    /** request -> outcome and accepted -> report, each split by what the request went through. */
    causes: {
      request_to_outcome: Object.fromEntries(
        [...outcomesByCause].map(([cause, values]) => [cause, stats(values)]),
      ),
      accepted_to_report: Object.fromEntries(
        [...reportsByCause].map(([cause, values]) => [cause, stats(values)]),
      ),
    },
    /** The worker's histogram of its Plaid calls: the bucket each quantile falls in. */
    plaid_call: plaidCall ?? null,
    lag: {
      worker_max: Math.max(...samples.map((s) => s.worker_lag)),
      projector_max: Math.max(...samples.map((s) => s.projector_lag)),
    },
    rss: Object.fromEntries(
      APPS.map((a) => [
        a,
        {
          start_mb: samples[0]?.rss_mb[a],
          end_mb: samples.at(-1)?.rss_mb[a],
          max_mb: Math.max(...samples.map((s) => s.rss_mb[a])),
          slope_mb_per_min:
            Math.round(slope(secondHalf.map((s) => [s.t_s / 60, s.rss_mb[a]] as const)) * 100) /
            100,
        },
      ]),
    ),
    samples,
  };

  await observer.disconnect();
  await admin.disconnect();
  await sql.end();
  for (const app of [...APPS].reverse()) await procs[app].stop('SIGTERM');
  await dropBenchDatabase(databaseUrl);
  stopInfra(startedInfra);

  process.stdout.write(
    `\n${table([
      ['stage', 'count', 'p50 ms', 'p99 ms'],
      ...Object.entries(result.latency).map(([stage, s]) => [stage, s.count, s.p50_ms, s.p99_ms]),
    ])}\n\n${table([
      ['stage, by cause', 'count', 'p50 ms', 'p99 ms'],
      ...Object.entries(result.causes).flatMap(([stage, causes]) =>
        Object.entries(causes).map(([cause, s]) => [
          `${stage}: ${cause}`,
          s.count,
          s.p50_ms,
          s.p99_ms,
        ]),
      ),
    ])}\n\n${table([
      ['process', 'start MiB', 'end MiB', 'max MiB', 'slope MiB/min (2nd half)'],
      ...Object.entries(result.rss).map(([app, r]) => [
        app,
        r.start_mb ?? '-',
        r.end_mb ?? '-',
        r.max_mb,
        r.slope_mb_per_min,
      ]),
    ])}\n\nPlaid call (the worker's histogram, upper bounds): ${
      result.plaid_call
        ? `p50 <= ${result.plaid_call.at_most_s.p50} s, p99 <= ${result.plaid_call.at_most_s.p99} s of ${result.plaid_call.count} calls`
        : 'not read'
    }\nrequests ${result.totals.requests} (${result.totals.requests_per_s}/s), outcomes ${result.totals.outcomes}, reports ${result.totals.reports}; max lag: worker ${result.lag.worker_max}, projector ${result.lag.projector_max}\n`,
  );
  writeResults('soak', quick, result);
}

runBench(async () => {
  try {
    await main();
  } catch (error) {
    await stopAll();
    throw error;
  }
});
