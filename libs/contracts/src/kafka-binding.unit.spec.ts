import { sampleEvent } from '../../../test/support/sample-events';
import { EVENT_TYPES, type EventType, type RefreshAccepted } from './events';
import {
  CE_HEADERS,
  InvalidEventError,
  decodeEvent,
  encodeEvent,
  type KafkaRecord,
} from './kafka-binding';

/** An encoded event as a consumer sees it: key, value and headers as Buffers. */
function asConsumed(type: EventType): KafkaRecord & { headers: Record<string, Buffer> } {
  const encoded = encodeEvent(sampleEvent(type, 'item-1'));
  return {
    key: Buffer.from(encoded.key),
    value: Buffer.from(encoded.value),
    headers: Object.fromEntries(
      Object.entries(encoded.headers).map(([k, v]) => [k, Buffer.from(v)]),
    ),
  };
}

function withData(record: KafkaRecord, change: (data: Record<string, unknown>) => void) {
  const data = JSON.parse(String(record.value)) as Record<string, unknown>;
  change(data);
  return { ...record, value: Buffer.from(JSON.stringify(data)) };
}

function expectFailure(record: KafkaRecord, code: string, field: string) {
  const result = decodeEvent(record);
  if (result.ok) throw new Error(`expected ${code} on ${field}, but the record decoded`);
  expect(result.error).toMatchObject({ code, field });
  expect(result.error.message).toContain(field);
}

describe('CloudEvents binary mode over Kafka', () => {
  it.each(EVENT_TYPES)('round-trips %s with its metadata', (type) => {
    const event = sampleEvent(type, 'item-1');
    const encoded = encodeEvent(event);

    expect(encoded.key).toBe('item-1');
    expect(encoded.headers).toMatchObject({
      ce_specversion: '1.0',
      ce_id: event.metadata.id,
      ce_type: `cashflow-refresh.${type}.v1`,
      ce_subject: 'item-1',
      'content-type': 'application/json',
    });
    const decoded = decodeEvent(asConsumed(type));
    expect(decoded.ok).toBe(true);
    if (decoded.ok) expect(decoded.value.type).toBe(type);
    expect(decodeEvent({ ...encoded })).toEqual({ ok: true, value: event });
  });

  it('carries the correlation to the RefreshRequested an outcome answers', () => {
    const event = sampleEvent('RefreshAccepted');
    const encoded = encodeEvent(event);
    expect(encoded.headers[CE_HEADERS.correlationid]).toBe(event.metadata.correlationId);
    expect(encoded.headers[CE_HEADERS.causationid]).toBe(event.metadata.causationId);
  });

  describe('the distributed-tracing extension (ce_traceparent, ce_tracestate)', () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const withTrace = (headers: Record<string, string>): KafkaRecord => {
      const consumed = asConsumed('RefreshRequested');
      return {
        ...consumed,
        headers: {
          ...consumed.headers,
          ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
        },
      };
    };
    const metadataOf = (record: KafkaRecord) => {
      const decoded = decodeEvent(record);
      if (!decoded.ok) throw new Error(decoded.error.message);
      return decoded.value.metadata;
    };

    it('round-trips the trace context as ce_traceparent and ce_tracestate headers', () => {
      const event = sampleEvent('RefreshAccepted');
      const traced = {
        ...event,
        metadata: { ...event.metadata, traceparent, tracestate: 'vendor=abc' },
      };
      const encoded = encodeEvent(traced);
      expect(encoded.headers).toMatchObject({
        ce_traceparent: traceparent,
        ce_tracestate: 'vendor=abc',
      });
      expect(decodeEvent({ ...encoded })).toEqual({ ok: true, value: traced });
    });

    it('sends no trace headers for an event without a trace', () => {
      const encoded = encodeEvent(sampleEvent('RefreshAccepted'));
      expect(Object.keys(encoded.headers)).not.toContain('ce_traceparent');
      expect(Object.keys(encoded.headers)).not.toContain('ce_tracestate');
    });

    it('takes an upstream request traceparent, case-insensitive header names included', () => {
      expect(metadataOf(withTrace({ CE_TRACEPARENT: traceparent })).traceparent).toBe(traceparent);
    });

    it.each([
      ['not trace context', 'hello'],
      ['upper-case hex', traceparent.toUpperCase()],
      ['an all-zero trace id', '00-00000000000000000000000000000000-00f067aa0ba902b7-01'],
      ['an all-zero span id', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'],
    ])('ignores a traceparent that is %s rather than refusing the event', (_, value) => {
      const metadata = metadataOf(withTrace({ ce_traceparent: value, ce_tracestate: 'a=b' }));
      expect(metadata.traceparent).toBeUndefined();
      expect(metadata.tracestate).toBeUndefined();
    });

    it('drops a tracestate that is not printable ASCII, keeping the traceparent', () => {
      const metadata = metadataOf(
        withTrace({ ce_traceparent: traceparent, ce_tracestate: 'a=\u0001' }),
      );
      expect(metadata).toMatchObject({ traceparent });
      expect(metadata.tracestate).toBeUndefined();
    });
  });

  it('rejects data missing a required field, naming it', () => {
    const record = withData(asConsumed('RefreshRequested'), (d) => delete d.item_id);
    expectFailure(record, 'SCHEMA_VIOLATION', 'data.item_id');
  });

  it('rejects a field of the wrong type, naming its full path', () => {
    const record = withData(asConsumed('RefreshFailed'), (d) => {
      (d.error as Record<string, unknown>).http_status = 'four hundred';
    });
    expectFailure(record, 'SCHEMA_VIOLATION', 'data.error.http_status');
  });

  it('accepts any number of days on a request, leaving the range rule to the worker', () => {
    const record = withData(asConsumed('RefreshRequested'), (d) => (d.days_requested = 9000));
    expect(decodeEvent(record).ok).toBe(true);
    const text = withData(asConsumed('RefreshRequested'), (d) => (d.days_requested = '90'));
    expectFailure(text, 'SCHEMA_VIOLATION', 'data.days_requested');
  });

  it('drops unknown data fields but keeps unknown webhook fields', () => {
    const record = withData(asConsumed('ReportReady'), (d) => {
      d.extra = 'x';
      (d.webhook as Record<string, unknown>).new_plaid_field = 42;
    });
    const result = decodeEvent(record);
    if (!result.ok) throw new Error(result.error.message);
    expect(result.value.data).not.toHaveProperty('extra');
    expect(result.value.data).toHaveProperty('webhook.new_plaid_field', 42);
  });

  it('rejects a value that is not JSON', () => {
    expectFailure(
      { ...asConsumed('RefreshRequested'), value: Buffer.from('{nope') },
      'INVALID_JSON',
      'value',
    );
  });

  it('rejects an empty value', () => {
    expectFailure({ ...asConsumed('RefreshRequested'), value: null }, 'MISSING_VALUE', 'value');
  });

  it('rejects a record without the CloudEvents type header, naming it', () => {
    const record = asConsumed('RefreshRequested');
    delete record.headers[CE_HEADERS.type];
    expectFailure(record, 'MISSING_HEADER', 'ce_type');
  });

  it('rejects a malformed ce_time', () => {
    const record = asConsumed('RefreshRequested');
    record.headers[CE_HEADERS.time] = Buffer.from('yesterday');
    expectFailure(record, 'INVALID_HEADER', 'ce_time');
  });

  it('rejects a content type other than JSON', () => {
    const record = asConsumed('RefreshRequested');
    record.headers['content-type'] = Buffer.from('application/avro');
    expectFailure(record, 'INVALID_HEADER', 'content-type');
  });

  it('rejects an unknown event type and a type the topic does not carry', () => {
    const record = asConsumed('RefreshRequested');
    record.headers[CE_HEADERS.type] = Buffer.from('cashflow-refresh.Nope.v1');
    expectFailure(record, 'UNKNOWN_EVENT_TYPE', 'ce_type');

    const result = decodeEvent(asConsumed('ReportReady'), ['RefreshRequested']);
    expect(result).toMatchObject({ ok: false, error: { code: 'UNEXPECTED_EVENT_TYPE' } });
  });

  it('rejects a key or subject that is not the item_id, since ordering hangs on the key', () => {
    expectFailure(
      { ...asConsumed('RefreshRequested'), key: Buffer.from('other') },
      'KEY_MISMATCH',
      'key',
    );
    const record = asConsumed('RefreshRequested');
    record.headers[CE_HEADERS.subject] = Buffer.from('other');
    expectFailure(record, 'SUBJECT_MISMATCH', 'ce_subject');
  });

  it('does not let prototype keys in the data reach the decoded event', () => {
    const value = Buffer.from('{"item_id":"item-1","__proto__":{"polluted":true},"constructor":1}');
    const result = decodeEvent({ ...asConsumed('RefreshRequested'), value });
    expect(result.ok).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    if (result.ok) expect(Object.keys(result.value.data)).toEqual(['item_id']);
  });

  it('refuses to encode an invalid event, naming the field', () => {
    const event = sampleEvent('RefreshAccepted') as RefreshAccepted;
    const broken: RefreshAccepted = { ...event, data: { ...event.data, days_requested: 0 } };
    expect(() => encodeEvent(broken)).toThrow(InvalidEventError);
    expect(() => encodeEvent(broken)).toThrow(/data\.days_requested/);
  });
});
