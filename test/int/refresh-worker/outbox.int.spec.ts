import { topicName, type RefreshAccepted } from '@cashflow/contracts';
import { EventPublisher } from '@cashflow/kafka';
import { createDataSource, runMigrations } from '@cashflow/persistence';
import { ensureTopics } from '@cashflow/kafka';
import type { DataSource } from 'typeorm';
import { OutcomePublisher } from '../../../apps/refresh-worker/src/refresh/outcome-publisher';
import { RefreshStore } from '../../../apps/refresh-worker/src/refresh/refresh-store';
import { createTestDatabase, uniqueTopicPrefix, type TestDatabase } from '../../support/infra';
import { collect, quietLogger, testKafka } from '../../support/kafka';
import { eventsFor } from '../../support/refresh-histories';

/**
 * The worker's outbox when one request is answered twice at once (a redelivered request handled
 * by two workers across a rebalance, each calling Plaid): the outcome recorded first is the only
 * one that goes out, so consumers never see two contents under one event id.
 */
describe('refresh worker outbox: a request answered twice', () => {
  let db: TestDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    await runMigrations({ url: db.url, applicationName: 'test' });
    dataSource = await createDataSource({ url: db.url, applicationName: 'test' }).initialize();
  });
  afterAll(async () => {
    await dataSource.destroy();
    await db.drop();
  });

  it('publishes the outcome recorded first for every later copy', async () => {
    const prefix = uniqueTopicPrefix();
    const kafka = testKafka(prefix);
    await ensureTopics(kafka, { prefix, partitions: 1, replicationFactor: 1 });
    const publisher = new EventPublisher(kafka, prefix);
    await publisher.connect();
    const store = new RefreshStore(dataSource);
    const outbox = new OutcomePublisher(store, publisher, quietLogger);
    const outcomes = await collect(kafka, [topicName('refreshOutcomes', prefix)]);
    try {
      const item = eventsFor('item-twice');
      const first = item.accepted('r-1', '2026-11-24T10:00:01.000Z');
      // The second worker's call: same request, so the same event id, but another Plaid answer.
      const second: RefreshAccepted = {
        ...first,
        data: {
          ...first.data,
          plaid_request_id: 'plaid-second-call',
          accepted_at: '2026-11-24T10:00:02.000Z',
        },
      };
      expect(await store.record([first])).toEqual([first]);
      expect(await store.record([second])).toEqual([first]);

      await outbox.recordAndSend([second]);
      const [published] = await outcomes.until(1);
      const value = JSON.parse(published!.message.value!.toString()) as RefreshAccepted['data'];
      expect(value.plaid_request_id).toBe(first.data.plaid_request_id);
      expect(value.accepted_at).toBe(first.data.accepted_at);
    } finally {
      await outcomes.stop();
      await publisher.disconnect();
    }
  });

  it('records two copies of one request in one batch as the first, and returns that for both', async () => {
    const store = new RefreshStore(dataSource);
    const item = eventsFor('item-copies');
    const first = item.failed('r-copies', '2026-11-24T10:00:02.000Z');
    const second = item.failed('r-copies', '2026-11-24T10:00:03.000Z');
    expect(await store.record([first, second])).toEqual([first, first]);
    expect((await store.recorded(['r-copies'])).get('r-copies')?.event).toEqual(first);
  });
});
