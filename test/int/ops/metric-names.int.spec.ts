import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { OPS_DIR, alertRules, dashboardTargets, metricNamesIn } from '../../support/ops';
import { startSandbox, type Sandbox } from '../../support/plaid-sandbox';
import { projectorWorld, type ProjectorWorld } from '../../support/projector';
import { fetcherWorld, type FetcherWorld } from '../../support/report-fetcher';
import { startWorker, workerWorld, type WorkerWorld } from '../../support/refresh-worker';
import { ingressWorld } from '../../support/webhook-ingress';

/** Series Prometheus makes itself for every target; no app exports them. */
const PROMETHEUS_SERIES = new Set(['up']);

/** The names a /metrics page exports: histograms and summaries as the series PromQL reads. */
async function exportedNames(url: string): Promise<Set<string>> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`${url}: ${response.status}`);
  const names = new Set<string>();
  for (const match of (await response.text()).matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    if (type === 'histogram') ['_bucket', '_sum', '_count'].forEach((s) => names.add(name + s));
    else if (type === 'summary') ['', '_sum', '_count'].forEach((s) => names.add(name + s));
    else names.add(name);
  }
  return names;
}

describe('metric names in the alert rules and the dashboard', () => {
  const worlds: { close(): Promise<void> }[] = [];
  /** Per app, the metric names its /metrics exports. */
  const exported = new Map<string, Set<string>>();

  beforeAll(async () => {
    // Each app as the integration tests start it: in this process, on real Kafka and PostgreSQL.
    const sandbox: Sandbox = await startSandbox();
    worlds.push(sandbox);
    const worker: WorkerWorld = await workerWorld();
    worlds.push(worker);
    const workerApp = await startWorker(worker);
    worlds.push({ close: () => workerApp.app.close() });
    const ingress = await ingressWorld();
    worlds.push(ingress);
    const projector: ProjectorWorld = await projectorWorld();
    worlds.push(projector);
    const projectorApp = await projector.startProjector();
    const fetcher: FetcherWorld = await fetcherWorld();
    worlds.push(fetcher);
    const fetcherApp = await fetcher.startFetcher();

    const pages = {
      'plaid-sandbox': `${sandbox.url}/metrics`,
      'refresh-worker': `${workerApp.url}/metrics`,
      'webhook-ingress': `${ingress.ingress.adminUrl}/metrics`,
      projector: `${projectorApp.url}/metrics`,
      'report-fetcher': `${fetcherApp.url}/metrics`,
    };
    for (const [app, url] of Object.entries(pages)) exported.set(app, await exportedNames(url));
  });

  afterAll(async () => {
    for (const world of worlds.reverse()) await world.close();
  });

  const exportedByAny = (name: string) =>
    PROMETHEUS_SERIES.has(name) || [...exported.values()].some((names) => names.has(name));

  it('reads only metrics the apps export', () => {
    const used = [
      ...alertRules().map((r) => ({ where: `rule ${r.alert}`, names: metricNamesIn(r.expr) })),
      ...dashboardTargets().map((t) => ({
        where: `panel ${t.panel}`,
        names: metricNamesIn(t.expr),
      })),
    ];
    // Every query reads something: an expression the extraction misread would show here.
    expect(used.filter((u) => u.names.length === 0)).toEqual([]);
    const unknown = used.flatMap((u) =>
      u.names.filter((n) => !exportedByAny(n)).map((n) => `${u.where}: ${n}`),
    );
    expect(unknown).toEqual([]);
  });

  it('tests the rules on series the apps export', () => {
    const tests = parse(readFileSync(join(OPS_DIR, 'prometheus/rules.test.yaml'), 'utf8')) as {
      tests: { input_series: { series: string }[] }[];
    };
    const names = new Set(
      tests.tests.flatMap((t) => t.input_series.map((s) => /^[a-zA-Z_:][\w:]*/.exec(s.series)![0])),
    );
    expect([...names].filter((n) => !exportedByAny(n))).toEqual([]);
  });

  it('covers every app, beyond the process metrics all of them export', () => {
    const used = new Set([
      ...alertRules().flatMap((r) => metricNamesIn(r.expr)),
      ...dashboardTargets().flatMap((t) => metricNamesIn(t.expr)),
    ]);
    const common = [...exported.values()].reduce(
      (all, names) => new Set([...all].filter((n) => names.has(n))),
    );
    expect(common.size).toBeGreaterThan(0);
    for (const [app, names] of exported) {
      const own = [...names].filter((n) => !common.has(n) && used.has(n));
      expect({ app, readsItsOwn: own.length > 0 }).toEqual({ app, readsItsOwn: true });
    }
    // The dashboard shows each app's memory and event-loop lag.
    expect([...common].filter((n) => used.has(n))).toEqual(
      expect.arrayContaining([
        'cashflow_process_resident_memory_bytes',
        'cashflow_nodejs_eventloop_lag_p99_seconds',
      ]),
    );
  });
});
