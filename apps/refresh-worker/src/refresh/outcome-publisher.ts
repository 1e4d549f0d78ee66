import type { EventPublisher } from '@cashflow/kafka';
import type { Logger } from '@cashflow/observability';
import { OutboxRelay } from '../outbox-relay';
import type { RefreshMetrics } from './refresh-metrics';
import type { OutcomeEvent, RefreshStore } from './refresh-store';

/**
 * Publishes outcome events through the outbox: record in PostgreSQL, publish to Kafka, stamp as
 * published. Calls arriving while a flush runs go out together in the next one, so batches grow
 * with load and add no delay when idle. A relay republishes what a crash left unstamped; the
 * same event id keeps consumers from seeing an outcome twice.
 */
export class OutcomePublisher {
  private queue: {
    events: OutcomeEvent[];
    recorded: boolean;
    done: () => void;
    fail: (e: unknown) => void;
  }[] = [];
  private flushing = false;
  private readonly relay = new OutboxRelay();

  constructor(
    private readonly store: RefreshStore,
    private readonly publisher: EventPublisher,
    private readonly logger: Logger,
    private readonly metrics?: RefreshMetrics,
  ) {}

  /**
   * Records new outcomes in the outbox and publishes what is recorded (for a request answered
   * before, its earlier outcome); resolves once Kafka has them.
   */
  recordAndSend(events: readonly OutcomeEvent[]): Promise<void> {
    return this.enqueue(events, false);
  }

  /** Publishes outcomes already recorded (a redelivered request, the relay); resolves once Kafka has them. */
  sendAgain(events: readonly OutcomeEvent[]): Promise<void> {
    return this.enqueue(events, true);
  }

  /** Outcome events waiting for Kafka in this process. */
  get queued(): number {
    return this.queue.reduce((n, b) => n + b.events.length, 0);
  }

  private enqueue(events: readonly OutcomeEvent[], recorded: boolean): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return new Promise((done, fail) => {
      this.queue.push({ events: [...events], recorded, done, fail });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 500);
      try {
        // What is recorded is what goes out: for a request answered before, the earlier outcome.
        const recorded = await this.store.record(
          batch.filter((b) => !b.recorded).flatMap((b) => b.events),
        );
        const events = [...recorded, ...batch.filter((b) => b.recorded).flatMap((b) => b.events)];
        await this.publisher.publish(...events);
        batch.forEach((b) => b.done());
        this.metrics?.published(recorded);
        await this.store
          .markPublished(events.map((e) => e.data.refresh_request_id))
          .catch((error: unknown) =>
            this.logger.warn(
              { err: error },
              'stamping published outcomes failed; the relay will republish',
            ),
          );
      } catch (error) {
        batch.forEach((b) => b.fail(error));
      }
    }
    this.flushing = false;
  }

  /**
   * Every `everyMs`, republishes outcomes recorded over `graceMs` ago and never stamped. One
   * round at a time: while Kafka is away, a round waits and no other starts.
   */
  startRelay(everyMs: number, graceMs: number): void {
    this.relay.start(everyMs, () => this.relayOnce(graceMs));
  }

  private async relayOnce(graceMs: number): Promise<void> {
    try {
      const events = await this.store.unpublished(graceMs, 500);
      if (events.length > 0)
        this.logger.info({ count: events.length }, 'republishing unpublished outcomes');
      await this.sendAgain(events);
    } catch (error) {
      this.logger.warn({ err: error }, 'outbox relay failed; will retry');
    }
  }

  stopRelay(): void {
    this.relay.stop();
  }
}
