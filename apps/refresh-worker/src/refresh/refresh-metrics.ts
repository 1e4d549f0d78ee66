import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { OutcomeEvent } from './refresh-store';

/** What ops watch on the worker: outcomes by kind, Plaid call latency, work in hand. */
export class RefreshMetrics {
  private readonly outcomes: Counter<'type' | 'error_code' | 'coalesced'>;
  private readonly plaidCalls: Histogram<'result'>;
  private readonly parked: Counter;
  private readonly plaidInFlight: Gauge;

  constructor(
    registry: Registry,
    inFlight: () => number,
    trackedItems: () => number,
    waitingRetries: () => Promise<number>,
  ) {
    this.outcomes = new Counter({
      name: 'refresh_outcomes_total',
      help: 'Outcome events published, by type, error_code and whether coalesced.',
      labelNames: ['type', 'error_code', 'coalesced'],
      registers: [registry],
    });
    this.plaidCalls = new Histogram({
      name: 'plaid_refresh_call_seconds',
      help: 'Duration of /cashflow_report/refresh calls, by result (accepted or the error code).',
      labelNames: ['result'],
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90],
      registers: [registry],
    });
    this.plaidInFlight = new Gauge({
      name: 'plaid_refresh_calls_in_flight',
      help: 'Calls to /cashflow_report/refresh sent and not yet answered.',
      registers: [registry],
    });
    this.parked = new Counter({
      name: 'refresh_retries_parked_total',
      help: 'Plaid calls parked in PostgreSQL to be retried later.',
      registers: [registry],
    });
    new Gauge({
      name: 'refresh_requests_in_flight',
      help: 'RefreshRequested messages being handled.',
      registers: [registry],
      collect() {
        this.set(inFlight());
      },
    });
    new Gauge({
      name: 'refresh_items_tracked',
      help: 'Items with a call running, waiting, or in their rate-limit window.',
      registers: [registry],
      collect() {
        this.set(trackedItems());
      },
    });
    new Gauge({
      name: 'refresh_retries_waiting',
      help: 'Plaid calls parked in PostgreSQL waiting for their retry, across every worker (refresh_retries rows not claimed).',
      registers: [registry],
      async collect() {
        // A scrape must not fail because the database is away: no value then.
        this.set(await waitingRetries().catch(() => NaN));
      },
    });
  }

  published(events: readonly OutcomeEvent[]): void {
    for (const e of events) {
      this.outcomes.inc({
        type: e.type,
        error_code: e.type === 'RefreshFailed' ? e.data.error.error_code : 'none',
        coalesced: e.data.coalesced_into ? 'yes' : 'no',
      });
    }
  }

  /** Starts timing a Plaid call; call the result with its outcome. */
  plaidCall(): (result: string) => void {
    const end = this.plaidCalls.startTimer();
    this.plaidInFlight.inc();
    return (result) => {
      this.plaidInFlight.dec();
      end({ result });
    };
  }

  retryParked(): void {
    this.parked.inc();
  }
}
