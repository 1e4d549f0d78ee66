import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The projector's metrics (on /metrics with the process defaults). */
export class ProjectorMetrics {
  readonly applied: Counter<'type'>;
  readonly batches: Counter<'result'>;
  readonly batchSeconds: Histogram;
  readonly lagEvents: Gauge<'topic' | 'partition'>;
  readonly lagSeconds: Gauge<'topic' | 'partition'>;
  readonly deadLetters: Counter<'topic'>;
  readonly groupJoins: Counter<'group'>;
  readonly refreshSeconds: Histogram<'stage'>;

  constructor(registry: Registry, stuckItems?: () => Promise<number>) {
    this.applied = new Counter({
      name: 'projector_events_applied_total',
      help: 'Events applied to the projection, by type (redeliveries skipped are not counted).',
      labelNames: ['type'],
      registers: [registry],
    });
    this.batches = new Counter({
      name: 'projector_batches_total',
      help: 'Batches handled: applied, skipped (already applied), seek (checkpoint behind), failed.',
      labelNames: ['result'],
      registers: [registry],
    });
    this.batchSeconds = new Histogram({
      name: 'projector_batch_seconds',
      help: 'Time to apply one PostgreSQL transaction (the batches of the partitions read together).',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    this.lagEvents = new Gauge({
      name: 'projector_lag_events',
      help: 'Records on the partition not yet applied (high watermark - next offset).',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    });
    this.lagSeconds = new Gauge({
      name: 'projector_lag_seconds',
      help: 'Age of the last record applied while records are left to read (now - its Kafka timestamp); 0 once caught up.',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    });
    this.deadLetters = new Counter({
      name: 'projector_dead_letters_total',
      help: 'Records that could not be decoded, copied to the dead-letter topic.',
      labelNames: ['topic'],
      registers: [registry],
    });
    // The same name and meaning as the worker's and the fetcher's (libs/kafka), so one query
    // covers every consumer group.
    this.groupJoins = new Counter({
      name: 'kafka_consumer_group_joins_total',
      help: 'Times the consumer joined its group: 1 after start, +1 for every rebalance.',
      labelNames: ['group'],
      registers: [registry],
    });
    this.refreshSeconds = new Histogram({
      name: 'projector_refresh_seconds',
      help: 'Per request, once: seconds from the request to its acceptance (stage to_accept) and from the acceptance to its report (stage to_ready), as refresh_requests.seconds_to_accept and seconds_to_ready.',
      labelNames: ['stage'],
      buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600],
      registers: [registry],
    });
    if (stuckItems) {
      new Gauge({
        name: 'projector_stuck_items',
        help: 'Items accepted by Plaid longer ago than PROJECTOR_STUCK_AFTER_MINUTES with no webhook since.',
        registers: [registry],
        async collect() {
          // A scrape must not fail because the database is away; the gauge keeps its last value.
          this.set(await stuckItems().catch(() => NaN));
        },
      });
    }
  }
}
