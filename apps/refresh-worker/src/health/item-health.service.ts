import type { EventPublisher } from '@cashflow/kafka';
import type { Logger } from '@cashflow/observability';
import { Counter, type Registry } from 'prom-client';
import { OutboxRelay } from '../outbox-relay';
import type { ItemFact } from './health-events';
import type { HealthEvent, HealthStore } from './health-store';

/**
 * Folds facts about Items into their health (HealthStore) and publishes each change, once:
 * through the outbox (item_health_events), then Kafka, then stamped. A change whose publish
 * failed is republished by the relay; the fact itself is not folded twice (folding it again
 * changes nothing).
 */
export class ItemHealthService {
  private readonly changes: Counter<'type' | 'status'>;
  private readonly relay = new OutboxRelay();

  constructor(
    private readonly store: HealthStore,
    private readonly publisher: EventPublisher,
    private readonly logger: Logger,
    registry: Registry,
  ) {
    this.changes = new Counter({
      name: 'item_health_changes_total',
      help: 'Item health changes published: ItemNeedsAttention (by the new status) and ItemHealthRestored.',
      labelNames: ['type', 'status'],
      registers: [registry],
    });
  }

  /**
   * Folds `fact`; resolves once the change it makes, if any, is stored with its event (in the
   * outbox) and, unless Kafka is away, published. Rejects only when the fold could not be stored.
   */
  async record(fact: ItemFact | null): Promise<void> {
    if (!fact) return;
    const events = await this.store.apply(fact);
    if (events.length === 0) return;
    for (const event of events) {
      this.changes.inc({
        type: event.type,
        status: event.type === 'ItemNeedsAttention' ? event.data.health.status : 'healthy',
      });
      this.logger.info(
        {
          item_id: event.data.item_id,
          event: event.type,
          health: event.type === 'ItemNeedsAttention' ? event.data.health : { status: 'healthy' },
          cause: event.data.cause,
        },
        'item health changed',
      );
    }
    // Stored: the relay publishes what cannot be published now.
    await this.send(events).catch((error: unknown) =>
      this.logger.warn({ err: error }, 'publishing health changes failed; the relay will'),
    );
  }

  private async send(events: readonly HealthEvent[]): Promise<void> {
    await this.publisher.publish(...events);
    await this.store
      .markPublished(events.map((e) => e.metadata.id))
      .catch((error: unknown) =>
        this.logger.warn({ err: error }, 'stamping health events failed; the relay will republish'),
      );
  }

  /** Every `everyMs`, republishes changes written over `graceMs` ago and never stamped. */
  startRelay(everyMs: number, graceMs: number): void {
    this.relay.start(everyMs, () => this.relayOnce(graceMs));
  }

  stopRelay(): void {
    this.relay.stop();
  }

  private async relayOnce(graceMs: number): Promise<void> {
    try {
      const events = await this.store.unpublished(graceMs, 500);
      if (events.length === 0) return;
      this.logger.info({ count: events.length }, 'republishing unpublished health changes');
      await this.send(events);
    } catch (error) {
      this.logger.warn({ err: error }, 'health outbox relay failed; will retry');
    }
  }
}
