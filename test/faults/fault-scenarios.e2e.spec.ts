/**
 * Fault scenarios: the whole system as separate processes under load while the world
 * misbehaves, each ending with `cashflow-refresh check`. `npm test` runs the short form;
 * `npm run faults` runs the full form (5,000 requests over 1,000 Items, 20 s outages) and writes
 * its figures to bench/results/.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from '../support/processes';
import { waitFor } from '../support/wait-for';
import {
  TIME_SCALE,
  dedicatedInfra,
  faultSystem,
  type DedicatedInfra,
  type FaultSystem,
  type SystemSettings,
} from './fault-system';
import { fetcherFindings, fetcherSettled, type FetcherFigures } from './fetcher';
import { createItems, startLoad, type ItemOptions, type Load } from './load';
import { answeredTimeline, metric, round, type Timeline } from './measure';

const FULL = process.env.FAULTS_FORM === 'full';
const PLAN = FULL
  ? { form: 'full', requests: 5000, items: 1000, perSecond: 150, outageMs: 20_000, restarts: 4 }
  : { form: 'short', requests: 600, items: 150, perSecond: 100, outageMs: 5000, restarts: 2 };
const SCENARIO_TIMEOUT_MS = FULL ? 15 * 60_000 : 5 * 60_000;

interface Fault {
  /** When the fault ended (the process restarted, the broker or database back, Plaid healthy). */
  readonly clearedAt: number;
  readonly figures: Record<string, number | string | null>;
  /** More figures, read once everything has settled. */
  readonly after?: () => Promise<Record<string, number | string | null>>;
  /**
   * A second act for a settled system (webhooks fired again for reports already fetched), run
   * before the check; the system settles again after it. Returns more figures.
   */
  readonly afterSettled?: () => Promise<Record<string, number | string | null>>;
}

interface Result {
  readonly scenario: string;
  readonly requests: number;
  readonly items: number;
  /** Starting the apps and creating the Items. */
  readonly setup_s: number;
  /** From the load's start until everything settled. */
  readonly seconds: number;
  /** `check` and the fetcher's findings. */
  readonly check_s: number;
  readonly plaid_calls: number;
  /** Plaid calls over requests: how much coalescing saved, and how much handing requests over cost. */
  readonly plaid_calls_per_request: number;
  /**
   * Plaid calls over the requests that made a call of their own (not coalesced): 1 plus retries
   * and calls made twice; unlike calls per request, it does not depend on how much a fault's
   * backlog let coalesce.
   */
  readonly plaid_calls_per_own_call: number;
  readonly fault: Record<string, number | string | null>;
  readonly first_progress_s: number | null;
  readonly drained_s: number | null;
  readonly duplicates_absorbed: number;
  readonly coalesced: number;
  readonly failed: number;
  readonly violations: number;
  /** What the report fetcher did; its promises are checked by `check` and by fetcherFindings. */
  readonly fetcher: FetcherFigures;
}

let infra: DedicatedInfra;
const results: Result[] = [];

beforeAll(async () => {
  infra = await dedicatedInfra();
}, 180_000);

afterAll(() => {
  infra?.remove();
  if (results.length === 0) return;
  console.log(`fault scenarios (${PLAN.form} form)\n${table(results)}`);
  if (FULL) {
    const dir = join(REPO_ROOT, 'bench/results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${new Date().toISOString().slice(0, 10)}-faults.json`);
    writeFileSync(
      file,
      `${JSON.stringify({ date: new Date().toISOString(), plan: PLAN, results }, null, 2)}\n`,
    );
  }
});

/**
 * Starts a system, creates the Items, runs the load with `fault` injected meanwhile, waits
 * until every request is answered and every webhook delivered, then runs the checker.
 */
async function scenario(
  name: string,
  settings: SystemSettings & {
    readonly days?: readonly number[];
    readonly items?: ItemOptions;
  },
  fault: (
    system: FaultSystem,
    load: Load,
    timeline: Timeline,
    items: readonly string[],
  ) => Promise<Fault>,
): Promise<Result> {
  const begun = Date.now();
  const system = await faultSystem(infra, name, settings);
  const timeline = answeredTimeline(system);
  try {
    const items = await createItems(system, PLAN.items, settings.items);
    const started = Date.now();
    const load = startLoad(system, items, PLAN.requests, PLAN.perSecond, settings.days);
    const injected = await fault(system, load, timeline, items);
    const { ids } = await load.done;
    await settled(name, system, ids.length, timeline);
    const seconds = round((Date.now() - started) / 1000);
    const second = injected.afterSettled ? await injected.afterSettled() : {};
    if (injected.afterSettled) await settled(name, system, ids.length, timeline);
    const figures = { ...injected.figures, ...(await injected.after?.()), ...second };
    expect(system.crashed()).toEqual([]);

    const checkStarted = Date.now();
    const checked = await system.check(mkdtempSync(join(tmpdir(), `cashflow-${name}-logs-`)));
    if (checked.code !== 0) console.error(checked.stdout, checked.stderr);
    expect(checked.code).toBe(0);
    const report = JSON.parse(checked.stdout) as {
      holds: boolean;
      findings: { holds: boolean; counts: Record<string, number> }[];
    };
    const outcomes = report.findings[0]!.counts;
    const plaidCalls = await metric(
      `${system.sandbox.url}/metrics`,
      'plaid_sandbox_refresh_answers_total',
    );
    const fetcher = await fetcherFindings(system);
    const result: Result = {
      scenario: name,
      requests: ids.length,
      items: items.length,
      setup_s: round((started - begun) / 1000),
      seconds,
      check_s: round((Date.now() - checkStarted) / 1000),
      plaid_calls: plaidCalls,
      plaid_calls_per_request: Math.round((plaidCalls / ids.length) * 1000) / 1000,
      plaid_calls_per_own_call:
        Math.round((plaidCalls / (ids.length - (outcomes.coalesced ?? 0))) * 1000) / 1000,
      fault: figures,
      first_progress_s: timeline.progressAfter(injected.clearedAt),
      drained_s: timeline.drainedAfter(injected.clearedAt, ids.length),
      duplicates_absorbed: report.findings.reduce(
        (sum, f) => sum + (f.counts['duplicates absorbed'] ?? 0),
        0,
      ),
      coalesced: outcomes.coalesced ?? 0,
      failed: outcomes.failed ?? 0,
      violations: report.findings.filter((f) => !f.holds).length,
      fetcher: fetcher.figures,
    };
    expect(report.holds).toBe(true);
    expect(outcomes.requests).toBe(ids.length);
    // No report fetched twice; no row missing or extra against what the sandbox serves.
    expect(fetcher.problems).toEqual([]);
    results.push(result);
    return result;
  } finally {
    await timeline.stop();
    await system.close();
  }
}

/**
 * Waits until every request is answered, no Item is requested or refreshing, every webhook is
 * delivered, and the report fetcher has fetched and published all it owes.
 */
async function settled(name: string, system: FaultSystem, requests: number, timeline: Timeline) {
  try {
    await waitFor(
      `all ${requests} requests answered (${timeline.latest()} so far)`,
      () => (timeline.latest() >= requests ? true : undefined),
      SCENARIO_TIMEOUT_MS / 2,
      1000,
    );
    await waitFor(
      'every Item settled (none requested or refreshing)',
      async () =>
        (await system.count(
          "SELECT count(*) AS n FROM item_refresh_state WHERE status IN ('requested', 'refreshing')",
        )) === 0
          ? true
          : undefined,
      SCENARIO_TIMEOUT_MS / 4,
      1000,
    );
    await waitFor(
      'every webhook delivered',
      async () => {
        const { body } = await system.sandbox.admin('GET', '/webhooks');
        const pending = (body.deliveries as { state: string }[]).filter(
          (d) => d.state !== 'delivered',
        );
        return pending.length === 0 ? true : undefined;
      },
      SCENARIO_TIMEOUT_MS / 4,
      1000,
    );
    await fetcherSettled(system, SCENARIO_TIMEOUT_MS / 4);
  } catch (error) {
    // Leave what is needed to see why: the stuck Items and every app's output.
    const logs = system.writeLogs(mkdtempSync(join(tmpdir(), `cashflow-${name}-stuck-`)));
    const stuck = await system
      .rows(
        "SELECT item_id, status, latest_request_id FROM item_refresh_state WHERE status IN ('requested', 'refreshing') LIMIT 20",
      )
      .catch(() => []);
    console.error(`${name}: not settled; logs in ${logs}; stuck: ${JSON.stringify(stuck)}`);
    throw error;
  }
}

const workerMetrics = (system: FaultSystem, instance = system.workerNames[0]!) =>
  `${system.workerUrl(instance)}/metrics`;

/** Waits until `probe` reaches `atLeast`, returning the value seen. */
async function reach(what: string, probe: () => Promise<number> | number, atLeast: number) {
  return waitFor(
    what,
    async () => {
      const value = await probe();
      return value >= atLeast ? value : undefined;
    },
    120_000,
    100,
  );
}

describe(`fault scenarios (${PLAN.form} form: ${PLAN.requests} requests over ${PLAN.items} Items each)`, () => {
  it(
    'no fault, two workers in one group: the control the rolling restart is compared with',
    async () => {
      await scenario('no_fault', { workers: 2 }, () =>
        Promise.resolve({ clearedAt: Date.now(), figures: {} }),
      );
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'kill -9 of the worker with hundreds of Plaid calls in flight: restarted, nothing lost or answered twice',
    async () => {
      const result = await scenario('worker_kill', {}, async (system) => {
        const worker = system.workerNames[0]!;
        const inFlight = await reach(
          'Plaid calls in flight',
          () => metric(workerMetrics(system), 'plaid_refresh_calls_in_flight'),
          FULL ? 200 : 60,
        );
        await system.stop(worker, 'SIGKILL');
        await sleep(2000);
        const clearedAt = Date.now();
        await system.start(worker);
        return {
          clearedAt,
          figures: {
            plaid_calls_in_flight_at_kill: inFlight,
            restart_to_ready_s: round((Date.now() - clearedAt) / 1000),
          },
        };
      });
      expect(result.fault.plaid_calls_in_flight_at_kill).toBeGreaterThanOrEqual(FULL ? 200 : 60);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'Kafka stopped during load: the ingress answers 503, the sandbox retries, every report lands',
    async () => {
      const result = await scenario('kafka_outage', {}, async (system, load) => {
        await reach('a third of the load published', load.published, PLAN.requests / 3);
        const before = await metric(
          system.ingressMetricsUrl,
          'webhook_requests_total',
          'unavailable',
        );
        infra.stop('kafka');
        const stoppedAt = Date.now();
        await sleep(PLAN.outageMs);
        const unavailable =
          (await metric(system.ingressMetricsUrl, 'webhook_requests_total', 'unavailable')) -
          before;
        infra.start('kafka');
        const clearedAt = Date.now();
        return {
          clearedAt,
          figures: {
            outage_s: round((clearedAt - stoppedAt) / 1000),
            ingress_503s: unavailable,
          },
        };
      });
      expect(result.fault.ingress_503s).toBeGreaterThan(0);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'PostgreSQL stopped while the projector is busy: it waits, resumes, and the projection equals the log',
    async () => {
      const result = await scenario('postgres_outage', {}, async (system, _load, timeline) => {
        await reach('a quarter answered', timeline.latest, PLAN.requests / 4);
        infra.stop('postgres');
        const stoppedAt = Date.now();
        await sleep(PLAN.outageMs);
        infra.start('postgres');
        const clearedAt = Date.now();
        return {
          clearedAt,
          figures: { outage_s: round((clearedAt - stoppedAt) / 1000) },
        };
      });
      expect(result.first_progress_s).not.toBeNull();
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'Plaid answering 30% 500s and 5% time-outs: retried, every request answered once',
    async () => {
      const result = await scenario(
        'plaid_errors',
        {
          sandbox: {
            PLAID_SANDBOX_FAULT_ERROR_RATE: '0.3',
            PLAID_SANDBOX_FAULT_TIMEOUT_RATE: '0.05',
          },
          // Latency is 1-4 s: a call unanswered after 6 s is a time-out.
          worker: { PLAID_RESPONSE_TIMEOUT_MS: '6000' },
        },
        async (system, load) => {
          await load.done;
          const sandboxMetrics = `${system.sandbox.url}/metrics`;
          const answers = 'plaid_sandbox_refresh_answers_total';
          const figures = {
            plaid_500s: await metric(sandboxMetrics, answers, 'INTERNAL_SERVER_ERROR'),
            plaid_timeouts: await metric(sandboxMetrics, answers, 'held_open'),
            rebalances:
              (await metric(workerMetrics(system), 'kafka_consumer_group_joins_total')) - 1,
          };
          // Plaid recovers: what is still retrying now succeeds.
          await system.sandbox.admin('PUT', '/faults', { error_rate: 0, timeout_rate: 0 });
          return { clearedAt: Date.now(), figures };
        },
      );
      expect(result.fault.plaid_500s).toBeGreaterThan(0);
      expect(result.fault.plaid_timeouts).toBeGreaterThan(0);
      expect(result.fault.rebalances).toBe(0);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'Plaid taking 35 s for every call: answered without a single consumer-group rebalance',
    async () => {
      const result = await scenario(
        'plaid_35s',
        {
          sandbox: { PLAID_SANDBOX_REFRESH_LATENCY: `fixed:${35_000 / TIME_SCALE}` },
          // Every request holds its slot for 35 s: enough slots for the whole load at once.
          worker: { REFRESH_MAX_IN_FLIGHT: String(PLAN.requests) },
          // One length of history, healthy Items: every Item's requests share its one 35 s call
          // (an Item failing twice first would take three).
          days: [365],
          items: { mix: 'healthy' },
        },
        async (system, load) => {
          await load.done;
          const url = workerMetrics(system);
          return {
            clearedAt: Date.now(),
            figures: {},
            after: async () => ({
              rebalances: (await metric(url, 'kafka_consumer_group_joins_total')) - 1,
              mean_plaid_call_s: round(
                (await metric(url, 'plaid_refresh_call_seconds_sum')) /
                  (await metric(url, 'plaid_refresh_call_seconds_count')),
              ),
            }),
          };
        },
      );
      // Counted after the scenario, once every call has taken its 35 s.
      expect(result.fault.rebalances).toBe(0);
      expect(result.fault.mean_plaid_call_s).toBeGreaterThanOrEqual(35);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'rolling restart of two workers in one group: one stopped and started repeatedly, nothing lost',
    async () => {
      const result = await scenario('rolling_restart', { workers: 2 }, async (system) => {
        const [, second] = system.workerNames as [string, string];
        let clearedAt = Date.now();
        let restarts = 0;
        for (let i = 0; i < PLAN.restarts; i += 1) {
          await sleep(2000);
          await system.stop(second, 'SIGTERM');
          await sleep(1000);
          clearedAt = Date.now();
          await system.start(second);
          restarts += 1;
        }
        return {
          clearedAt,
          figures: { restarts },
          after: async () => ({
            group_joins: (
              await Promise.all(
                system.workerNames.map((w) =>
                  metric(workerMetrics(system, w), 'kafka_consumer_group_joins_total'),
                ),
              )
            ).reduce((a, b) => a + b, 0),
          }),
        };
      });
      expect(result.fault.restarts).toBe(PLAN.restarts);
    },
    SCENARIO_TIMEOUT_MS,
  );
});

/** The results as a markdown table. */
function table(rows: readonly Result[]): string {
  const head = [
    'scenario',
    'requests',
    'Plaid calls',
    'calls per request',
    'calls per own call',
    'setup s',
    'seconds',
    'check s',
    'first progress s',
    'drained s',
    'duplicates absorbed',
    'coalesced',
    'failed',
    'violations',
    'fetches',
    'fetch failures',
    'fetch retries',
    'paging restarts',
    'refetched wider',
    'transactions stored',
    '/get calls',
    'fault',
  ];
  const lines = rows.map((r) => [
    r.scenario,
    r.requests,
    r.plaid_calls,
    r.plaid_calls_per_request,
    r.plaid_calls_per_own_call,
    r.setup_s,
    r.seconds,
    r.check_s,
    r.first_progress_s ?? '-',
    r.drained_s ?? '-',
    r.duplicates_absorbed,
    r.coalesced,
    r.failed,
    r.violations,
    r.fetcher.fetches,
    r.fetcher.fetch_failures,
    r.fetcher.fetch_retries,
    r.fetcher.fetch_restarts,
    r.fetcher.refetched_wider,
    r.fetcher.transactions_stored,
    r.fetcher.get_calls,
    Object.entries(r.fault)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
  ]);
  return [head, head.map(() => '---'), ...lines].map((l) => `| ${l.join(' | ')} |`).join('\n');
}
