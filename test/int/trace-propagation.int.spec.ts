import { createEvent, decodeEvent, topicName, type CashflowEvent } from '@cashflow/contracts';
import { EventPublisher, ensureTopics, inConsumeSpan, traceFields } from '@cashflow/kafka';
import { inSpan, registerTracing } from '@cashflow/observability';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { randomUUID } from 'node:crypto';
import { uniqueTopicPrefix } from '../support/infra';
import { collect, testKafka } from '../support/kafka';

/**
 * Trace context through a real broker, with an in-memory exporter: what one process publishes in
 * a span, the next consumes as that span's child, and what it publishes in turn stays in the
 * trace (the CloudEvents `ce_traceparent` header, written and read by libs/kafka).
 */
describe('trace context across Kafka', () => {
  const exporter = new InMemorySpanExporter();
  let shutdown: () => Promise<void>;
  const prefix = uniqueTopicPrefix();
  const kafka = testKafka(prefix);
  const publisher = new EventPublisher(kafka, prefix);
  const topics = {
    requested: topicName('refreshRequested', prefix),
    outcomes: topicName('refreshOutcomes', prefix),
  };

  beforeAll(async () => {
    shutdown = registerTracing({
      service: 'test',
      processors: [new SimpleSpanProcessor({ exporter })],
    }).shutdown;
    await ensureTopics(kafka, { prefix, partitions: 2, replicationFactor: 1 });
    await publisher.connect();
  });
  afterAll(async () => {
    await publisher.disconnect();
    await shutdown();
  });

  const decoded = (value: ReturnType<typeof decodeEvent>): CashflowEvent => {
    if (!value.ok) throw new Error(value.error.message);
    return value.value;
  };

  it('continues a publisher’s trace in the consumer and in what the consumer publishes', async () => {
    const itemId = `item-${randomUUID()}`;
    const reader = await collect(kafka, [topics.requested, topics.outcomes]);
    try {
      // An upstream publishes a request from within a span of its own.
      const upstream = await inSpan('upstream work', { kind: SpanKind.INTERNAL }, async (span) => {
        await publisher.publish(
          createEvent(
            'RefreshRequested',
            { item_id: itemId },
            {
              id: randomUUID(),
              source: 'urn:test:upstream',
              time: new Date().toISOString(),
              ...traceFields(),
            },
          ),
        );
        return span.spanContext();
      });
      const [record] = await reader.until(1, (r) => r.topic === topics.requested);
      const request = decoded(decodeEvent(record!.message));
      expect(request.metadata.traceparent).toBe(`00-${upstream.traceId}-${upstream.spanId}-01`);

      // A consumer handles it in a `process` span and answers with an outcome made there.
      await inConsumeSpan(request, topics.requested, () =>
        publisher.publish(
          createEvent(
            'RefreshFailed',
            {
              item_id: itemId,
              refresh_request_id: request.metadata.id,
              days_requested: 365,
              error: { source: 'worker', error_code: 'UNKNOWN_ITEM', error_message: 'test' },
              retryable: false,
              attempts: 0,
              failed_at: new Date().toISOString(),
            },
            {
              id: randomUUID(),
              source: 'urn:test:worker',
              time: new Date().toISOString(),
              ...traceFields(),
            },
          ),
        ),
      );
      const [answer] = await reader.until(1, (r) => r.topic === topics.outcomes);
      const outcome = decoded(decodeEvent(answer!.message));

      const spans = exporter.getFinishedSpans();
      const process = spans.find((s) => s.name === `process ${topics.requested}`)!;
      expect(process.kind).toBe(SpanKind.CONSUMER);
      expect(process.spanContext().traceId).toBe(upstream.traceId);
      expect(process.parentSpanContext?.spanId).toBe(upstream.spanId);
      expect(outcome.metadata.traceparent).toBe(
        `00-${upstream.traceId}-${process.spanContext().spanId}-01`,
      );
      const published = spans.filter((s) => s.kind === SpanKind.PRODUCER);
      expect(published.map((s) => s.name)).toEqual([
        `publish ${topics.requested}`,
        `publish ${topics.outcomes}`,
      ]);
      expect(published.every((s) => s.spanContext().traceId === upstream.traceId)).toBe(true);
      expect(published[1]!.parentSpanContext?.spanId).toBe(process.spanContext().spanId);
    } finally {
      await reader.stop();
    }
  });

  it('leaves events untraced when nothing is traced where they are made', () => {
    expect(traceFields()).toEqual({});
  });
});
