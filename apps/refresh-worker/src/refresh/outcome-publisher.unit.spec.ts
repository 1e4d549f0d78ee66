import type { EventPublisher } from '@cashflow/kafka';
import pino from 'pino';
import { eventsFor } from '../../../../test/support/refresh-histories';
import { OutcomePublisher } from './outcome-publisher';
import type { OutcomeEvent, RefreshStore } from './refresh-store';

/** 500 outcomes recorded and never stamped as published, as after a Kafka outage. */
const unpublished: OutcomeEvent[] = Array.from({ length: 500 }, (_, i) =>
  eventsFor(`item-${i}`).accepted(`r-${i}`, '2026-11-24T10:00:01.000Z'),
);

describe('OutcomePublisher relay during a Kafka outage', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('runs one round at a time, so what waits for Kafka stays one round', async () => {
    const reads: number[] = [];
    const store = {
      unpublished: () => {
        reads.push(Date.now());
        return Promise.resolve(unpublished);
      },
      record: (events: OutcomeEvent[]) => Promise.resolve(events),
      markPublished: () => Promise.resolve(),
    } as unknown as RefreshStore;
    // Kafka does not answer: every publish hangs.
    const kafka = { publish: () => new Promise(() => undefined) } as unknown as EventPublisher;
    const outbox = new OutcomePublisher(store, kafka, pino({ level: 'silent' }));

    outbox.startRelay(5000, 10_000);
    for (let tick = 0; tick < 20; tick++) await jest.advanceTimersByTimeAsync(5000);
    outbox.stopRelay();

    expect(reads).toHaveLength(1);
    expect(outbox.queued).toBeLessThanOrEqual(unpublished.length);
  });
});
