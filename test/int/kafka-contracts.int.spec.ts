import {
  DLQ_HEADERS,
  EVENT_TYPES,
  TOPIC_KEYS,
  decodeEvent,
  topicKeyForEvent,
  topicName,
} from '@cashflow/contracts';
import { EventPublisher, ensureTopics } from '@cashflow/kafka';
import type { Kafka } from 'kafkajs';
import { uniqueTopicPrefix } from '../support/infra';
import { collect, testKafka } from '../support/kafka';
import { sampleEvent } from '../support/sample-events';

describe('contract events through the real broker', () => {
  const prefix = uniqueTopicPrefix();
  let kafka: Kafka;
  let publisher: EventPublisher;

  beforeAll(async () => {
    kafka = testKafka(prefix);
    await ensureTopics(kafka, { prefix, partitions: 3, replicationFactor: 1 });
    publisher = new EventPublisher(kafka, prefix);
    await publisher.connect();
  });

  afterAll(async () => {
    await publisher.disconnect();
  });

  it('creates every topic with the stated partitions, event topics kept forever and the changelog compacted, idempotently', async () => {
    const again = await ensureTopics(kafka, { prefix, partitions: 3, replicationFactor: 1 });
    const names = TOPIC_KEYS.map((key) => topicName(key, prefix));
    expect(again.created).toEqual([]);
    expect(again.existing.sort()).toEqual([...names].sort());
    expect(again.mismatched).toEqual([]);

    const admin = kafka.admin();
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: names });
      for (const topic of metadata.topics) expect(topic.partitions).toHaveLength(3);
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: names.map((name) => ({
          type: 2,
          name,
          configNames: ['cleanup.policy', 'retention.ms', 'retention.bytes'],
        })),
      });
      const changelog = topicName('transactions', prefix);
      for (const resource of configs.resources) {
        const values = Object.fromEntries(
          resource.configEntries.map((e) => [e.configName, e.configValue]),
        );
        if (resource.resourceName === changelog) {
          expect(values['cleanup.policy']).toBe('compact');
        } else {
          expect(values).toEqual({
            'cleanup.policy': 'delete',
            'retention.ms': '-1',
            'retention.bytes': '-1',
          });
        }
      }
    } finally {
      await admin.disconnect();
    }

    const wider = await ensureTopics(kafka, { prefix, partitions: 6, replicationFactor: 1 });
    expect(wider.mismatched).toHaveLength(names.length);
  });

  it('publishes every event type to its topic, keyed by item_id, and decodes it unchanged', async () => {
    const events = EVENT_TYPES.map((type) => sampleEvent(type, 'item-round-trip'));
    const topics = [...new Set(events.map((e) => topicName(topicKeyForEvent(e.type), prefix)))];
    const reader = await collect(kafka, topics);
    try {
      await publisher.publish(...events);
      const received = await reader.until(
        events.length,
        (r) => r.message.key?.toString() === 'item-round-trip',
      );

      for (const event of events) {
        const record = received.find(
          (r) => r.message.headers?.ce_id?.toString() === event.metadata.id,
        );
        expect(record?.topic).toBe(topicName(topicKeyForEvent(event.type), prefix));
        expect(record?.message.key?.toString()).toBe('item-round-trip');
        expect(decodeEvent(record!.message)).toEqual({ ok: true, value: event });
      }
    } finally {
      await reader.stop();
    }
  });

  it('keeps one Item on one partition, so its events stay in order', async () => {
    const events = Array.from({ length: 20 }, () =>
      sampleEvent('RefreshRequested', 'item-ordered'),
    );
    const topic = topicName('refreshRequested', prefix);
    const reader = await collect(kafka, [topic]);
    try {
      for (const event of events) await publisher.publish(event);
      const mine = await reader.until(
        events.length,
        (r) => r.message.key?.toString() === 'item-ordered',
      );
      expect(mine.map((r) => r.message.headers?.ce_id?.toString())).toEqual(
        events.map((e) => e.metadata.id),
      );
    } finally {
      await reader.stop();
    }
  });

  it('dead-letters a malformed event byte for byte, with the field at fault in its headers', async () => {
    const source = topicName('refreshRequested', prefix);
    const producer = kafka.producer();
    await producer.connect();
    const value = '{"days_requested":30}';
    const [sent] = await producer.send({
      topic: source,
      messages: [
        {
          key: 'item-broken',
          value,
          headers: {
            ce_specversion: '1.0',
            ce_id: 'evt-broken-1',
            ce_source: 'urn:upstream:test',
            ce_type: 'cashflow-refresh.RefreshRequested.v1',
            ce_time: '2026-11-24T10:00:00Z',
            ce_subject: 'item-broken',
            'content-type': 'application/json',
          },
        },
      ],
    });
    await producer.disconnect();

    const upstream = await collect(kafka, [source]);
    const dlq = await collect(kafka, [topicName('deadLetter', prefix)]);
    try {
      const [broken] = await upstream.until(
        1,
        (r) => r.message.headers?.ce_id?.toString() === 'evt-broken-1',
      );
      if (!broken) throw new Error('unreachable');
      const decoded = decodeEvent(broken.message);
      if (decoded.ok) throw new Error('a request without item_id must not decode');
      expect(decoded.error).toMatchObject({ code: 'SCHEMA_VIOLATION', field: 'data.item_id' });

      await publisher.deadLetter(
        broken.message,
        decoded.error,
        { topic: source, partition: sent!.partition, offset: broken.message.offset },
        'test-consumer',
      );
      const [letter] = await dlq.until(1);
      const headers = letter!.message.headers!;
      expect(letter!.message.value?.toString()).toBe(value);
      expect(letter!.message.key?.toString()).toBe('item-broken');
      expect(headers[DLQ_HEADERS.errorCode]?.toString()).toBe('SCHEMA_VIOLATION');
      expect(headers[DLQ_HEADERS.field]?.toString()).toBe('data.item_id');
      expect(headers[DLQ_HEADERS.reason]?.toString()).toMatch(/^data\.item_id: /);
      expect(headers[DLQ_HEADERS.sourceTopic]?.toString()).toBe(source);
      expect(headers[DLQ_HEADERS.sourceOffset]?.toString()).toBe(broken.message.offset);
      expect(headers.ce_id?.toString()).toBe('evt-broken-1');
    } finally {
      await upstream.stop();
      await dlq.stop();
    }
  });
});
