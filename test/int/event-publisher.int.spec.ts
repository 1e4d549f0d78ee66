import { topicName, type DecodeError } from '@cashflow/contracts';
import { EventPublisher, createKafka, ensureTopics } from '@cashflow/kafka';
import { createLogger } from '@cashflow/observability';
import { KAFKA_BROKERS, uniqueTopicPrefix } from '../support/infra';
import { collect, testKafka } from '../support/kafka';
import { startKafkaProxy, type KafkaProxy } from '../support/kafka-proxy';
import { sampleEvent } from '../support/sample-events';
import { waitFor } from '../support/wait-for';

/**
 * A send whose reply is lost: the broker wrote the records, the producer never heard so and gave
 * up. kafkajs's idempotent producer then hands the next send the sequence numbers of the lost
 * one, and the broker, taking the next (different) records for a copy of what it already has,
 * acknowledges them without writing them. These tests lose the reply with a proxy in front of
 * the real broker and check that the next records do reach the topic.
 */
describe('EventPublisher: after a send whose reply was lost', () => {
  const prefix = uniqueTopicPrefix();
  const direct = testKafka(prefix);
  let proxy: KafkaProxy;
  let publisher: EventPublisher;

  beforeAll(async () => {
    // One partition: the lost send and the next one share a partition, hence a sequence.
    await ensureTopics(direct, { prefix, partitions: 1, replicationFactor: 1 });
    proxy = await startKafkaProxy(KAFKA_BROKERS[0]!);
    const throughProxy = createKafka(
      {
        brokers: proxy.brokers,
        clientId: 'test-lost-reply',
        topicPrefix: prefix,
        logger: createLogger({ service: 'test', level: 'fatal' }),
      },
      // Give up on a lost reply within seconds rather than the production half-minute, yet
      // leave a loaded machine's broker time to answer the sends that are not lost.
      {
        connectionTimeout: 10_000,
        requestTimeout: 4000,
        retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 200 },
      },
    );
    publisher = new EventPublisher(throughProxy, prefix);
    await untilDone('the publisher to connect', () => publisher.connect());
  });
  afterAll(async () => {
    await publisher?.disconnect();
    await proxy?.close();
  });

  const requested = () => sampleEvent('RefreshRequested', 'item-lost-reply');

  /**
   * Tries again until it succeeds: with few, short retries a loaded machine can fail a send
   * whose reply was not lost (the application's outbox sends again too). Trying again cannot
   * hide the defect: a send dropped as a copy is acknowledged, never failed.
   */
  const untilDone = (what: string, attempt: () => Promise<void>) =>
    waitFor(what, () => attempt().then(() => true), 40_000);

  it('publishes the next events, not only acknowledges them', async () => {
    const lost = requested();
    const next = requested();
    proxy.swallowProduceReplies = true;
    await expect(publisher.publish(lost)).rejects.toThrow();
    expect(proxy.swallowed).toBeGreaterThan(0);
    proxy.swallowProduceReplies = false;
    await untilDone('the next events to be stored', () => publisher.publish(next));

    const reader = await collect(direct, [topicName('refreshRequested', prefix)]);
    try {
      const ids = (await reader.toEnd(40_000)).map((r) => r.message.headers?.ce_id?.toString());
      expect(ids).toContain(next.metadata.id);
      // The broker did write the send whose reply was lost.
      expect(ids).toContain(lost.metadata.id);
    } finally {
      await reader.stop();
    }
    expect(proxy.errors).toEqual([]);
  });

  it('dead-letters the next record after a dead letter whose reply was lost', async () => {
    const error: DecodeError = {
      code: 'INVALID_JSON',
      field: '(value)',
      message: '(value): not JSON',
      issues: [],
    };
    const record = (value: string) => ({ key: 'item-lost-reply', value, headers: {} });
    const source = (offset: string) => ({ topic: 'elsewhere', partition: 0, offset });
    proxy.swallowProduceReplies = true;
    await expect(
      publisher.deadLetter(record('{lost'), error, source('1'), 'test'),
    ).rejects.toThrow();
    proxy.swallowProduceReplies = false;
    await untilDone('the next dead letter to be stored', () =>
      publisher.deadLetter(record('{next'), error, source('2'), 'test'),
    );

    const reader = await collect(direct, [topicName('deadLetter', prefix)]);
    try {
      const values = (await reader.toEnd(40_000)).map((r) => r.message.value?.toString());
      expect(values).toContain('{next');
      expect(values).toContain('{lost');
    } finally {
      await reader.stop();
    }
  });
});
