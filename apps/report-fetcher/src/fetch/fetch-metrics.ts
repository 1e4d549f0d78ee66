import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PlaidAnswerObserver } from '@cashflow/plaid-client';
import type { RunOutcome } from './fetch-runner';

/** What ops watch on the fetcher: runs by outcome, what fetches changed, how long they take. */
export class FetchMetrics {
  private readonly runs: Counter<'outcome'>;
  private readonly transactions: Counter<'change'>;
  private readonly restarts: Counter;
  private readonly duration: Histogram;

  constructor(registry: Registry, inFlight: () => number) {
    this.runs = new Counter({
      name: 'report_fetch_runs_total',
      help: 'Claimed runs by outcome: stored, retry (waits to try again), given_up (ReportFetchFailed); polls for overdue reports: found (ReportReady found by polling), overdue (ReportOverdue), waiting (polls again later); lost (claim taken over), published_only.',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.transactions = new Counter({
      name: 'report_transactions_changed_total',
      help: 'Transactions stored fetches added, modified or removed.',
      labelNames: ['change'],
      registers: [registry],
    });
    this.restarts = new Counter({
      name: 'report_fetch_pagination_restarts_total',
      help: 'Times paging started over because the data changed during pagination.',
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'report_fetch_seconds',
      help: 'From the first page asked for to the snapshot stored, for stored fetches.',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
      registers: [registry],
    });
    new Gauge({
      name: 'report_fetches_in_flight',
      help: 'Fetch runs under way in this process.',
      registers: [registry],
      collect() {
        this.set(inFlight());
      },
    });
  }

  ran(outcome: RunOutcome): void {
    this.runs.inc({ outcome });
  }

  stored(changes: {
    readonly added: number;
    readonly modified: number;
    readonly removed: number;
    readonly restarts: number;
    readonly duration_ms: number;
  }): void {
    this.transactions.inc({ change: 'added' }, changes.added);
    this.transactions.inc({ change: 'modified' }, changes.modified);
    this.transactions.inc({ change: 'removed' }, changes.removed);
    this.restarts.inc(changes.restarts);
    this.duration.observe(changes.duration_ms / 1000);
  }
}

/**
 * `plaid_report_call_seconds{endpoint,result}`: the fetcher's calls to Plaid (`/get` pages and
 * polls, `/insights/get`) by how they ended, `ok` or the error code, as the worker's
 * `plaid_refresh_call_seconds` does for refreshes.
 */
export function plaidCallMetrics(registry: Registry): PlaidAnswerObserver {
  const calls = new Histogram({
    name: 'plaid_report_call_seconds',
    help: "Duration of the fetcher's Plaid calls, by endpoint and result (ok or the error code).",
    labelNames: ['endpoint', 'result'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 90],
    registers: [registry],
  });
  return (endpoint, seconds, result) => calls.observe({ endpoint, result }, seconds);
}
