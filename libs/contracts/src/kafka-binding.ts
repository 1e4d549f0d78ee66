/**
 * CloudEvents 1.0 over Kafka in binary content mode: context attributes travel in `ce_*` headers,
 * `content-type` is `application/json`, the value is the event data as JSON, and the message key
 * is the item_id so every event of one Item stays in order within its topic.
 *
 * Written here rather than with the `cloudevents` package: its Kafka binding expects string
 * headers (kafkajs hands us Buffers), validates with its own ajv schema and throws untyped errors,
 * while every boundary of this service must return one typed error naming the field, from one
 * schema library. The binding itself is a dozen header names.
 */
import { z } from 'zod';
import { decodeFailure, fromZodIssues, type DecodeResult } from './decode-result';
import {
  EVENTS,
  EventId,
  Timestamp,
  eventTypeOfCloudEventType,
  type CashflowEvent,
  type EventMetadata,
  type EventType,
} from './events';

export const CE_HEADERS = {
  specversion: 'ce_specversion',
  id: 'ce_id',
  source: 'ce_source',
  type: 'ce_type',
  time: 'ce_time',
  subject: 'ce_subject',
  correlationid: 'ce_correlationid',
  causationid: 'ce_causationid',
  traceparent: 'ce_traceparent',
  tracestate: 'ce_tracestate',
  contentType: 'content-type',
} as const;

/** W3C trace context `traceparent`, version 00: version-traceid-parentid-flags, ids not all zero. */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;
/** W3C `tracestate`: at most 32 list members, 512 characters kept here. */
const TRACESTATE = /^[\x20-\x7e]{1,512}$/;

/**
 * The trace context an event carries, or nothing: a malformed `ce_traceparent` is dropped
 * (a new trace starts), and `ce_tracestate` only travels with a valid `ce_traceparent`.
 */
function traceContext(
  headers: Record<string, string>,
): Pick<EventMetadata, 'traceparent' | 'tracestate'> {
  const traceparent = headers[CE_HEADERS.traceparent];
  if (traceparent === undefined || !TRACEPARENT.test(traceparent)) return {};
  const tracestate = headers[CE_HEADERS.tracestate];
  return tracestate !== undefined && TRACESTATE.test(tracestate)
    ? { traceparent, tracestate }
    : { traceparent };
}

export const JSON_CONTENT_TYPE = 'application/json';

/** Larger values are rejected before parsing (the broker's default message limit is 1 MB). */
export const MAX_EVENT_BYTES = 1024 * 1024;

type HeaderValue = Buffer | string | (Buffer | string)[] | undefined;

/** The parts of a Kafka message the binding reads; kafkajs messages fit this shape. */
export interface KafkaRecord {
  readonly key: Buffer | string | null;
  readonly value: Buffer | string | null;
  readonly headers?: Readonly<Record<string, HeaderValue>>;
}

/** A Kafka message ready to produce. */
export interface EncodedRecord {
  readonly key: string;
  readonly value: string;
  readonly headers: Record<string, string>;
}

const Headers = z.object({
  [CE_HEADERS.specversion]: z.literal('1.0'),
  [CE_HEADERS.id]: EventId,
  [CE_HEADERS.source]: z.string().min(1).max(500),
  [CE_HEADERS.type]: z.string().min(1),
  [CE_HEADERS.time]: Timestamp,
  [CE_HEADERS.subject]: z.string().min(1),
  [CE_HEADERS.correlationid]: EventId.optional(),
  [CE_HEADERS.causationid]: EventId.optional(),
  [CE_HEADERS.contentType]: z
    .string()
    .regex(/^application\/json\s*(;.*)?$/i, 'must be application/json'),
});

/** Thrown when the service itself tries to publish an invalid event: a bug, never bad input. */
export class InvalidEventError extends Error {
  constructor(
    readonly type: string,
    readonly field: string,
    message: string,
  ) {
    super(`Refusing to publish an invalid ${type}: ${message}`);
    this.name = 'InvalidEventError';
  }
}

/** Validates the event's data and encodes it as a Kafka message. */
export function encodeEvent(event: CashflowEvent): EncodedRecord {
  const definition = EVENTS[event.type];
  if (!definition) throw new InvalidEventError(String(event.type), 'type', 'unknown event type');
  const parsed = definition.data.safeParse(event.data);
  if (!parsed.success) {
    const failure = fromZodIssues(parsed.error.issues, 'data');
    throw new InvalidEventError(event.type, failure.field, failure.message);
  }
  const meta = event.metadata;
  const headers: Record<string, string> = {
    [CE_HEADERS.specversion]: '1.0',
    [CE_HEADERS.id]: meta.id,
    [CE_HEADERS.source]: meta.source,
    [CE_HEADERS.type]: definition.cloudEventType,
    [CE_HEADERS.time]: meta.time,
    [CE_HEADERS.subject]: event.data.item_id,
    [CE_HEADERS.contentType]: JSON_CONTENT_TYPE,
  };
  if (meta.correlationId) headers[CE_HEADERS.correlationid] = meta.correlationId;
  if (meta.causationId) headers[CE_HEADERS.causationid] = meta.causationId;
  const trace = traceContext({
    ...(meta.traceparent ? { [CE_HEADERS.traceparent]: meta.traceparent } : {}),
    ...(meta.tracestate ? { [CE_HEADERS.tracestate]: meta.tracestate } : {}),
  });
  if (trace.traceparent) headers[CE_HEADERS.traceparent] = trace.traceparent;
  if (trace.tracestate) headers[CE_HEADERS.tracestate] = trace.tracestate;
  const headerCheck = Headers.safeParse(headers);
  if (!headerCheck.success) {
    const failure = fromZodIssues(headerCheck.error.issues);
    throw new InvalidEventError(event.type, failure.field, failure.message);
  }
  return { key: event.data.item_id, value: JSON.stringify(parsed.data), headers };
}

/**
 * Decodes and validates a Kafka message. Never throws: anything wrong comes back as a typed
 * failure naming the field, for the caller to dead-letter.
 */
export function decodeEvent(
  record: KafkaRecord,
  expected?: readonly EventType[],
): DecodeResult<CashflowEvent> {
  const raw = readHeaders(record.headers);
  const headers = Headers.safeParse(raw, { reportInput: true });
  if (!headers.success) {
    const failure = fromZodIssues(headers.error.issues);
    const missing = headers.error.issues.some(
      (i) => i.code === 'invalid_type' && i.input === undefined,
    );
    return decodeFailure(
      missing ? 'MISSING_HEADER' : 'INVALID_HEADER',
      failure.field,
      failure.message,
      failure.issues,
    );
  }
  const h = headers.data;
  const type = eventTypeOfCloudEventType(h[CE_HEADERS.type]);
  if (!type) {
    return decodeFailure(
      'UNKNOWN_EVENT_TYPE',
      CE_HEADERS.type,
      `${CE_HEADERS.type}: unknown event type "${h[CE_HEADERS.type]}"`,
    );
  }
  if (expected && !expected.includes(type)) {
    return decodeFailure(
      'UNEXPECTED_EVENT_TYPE',
      CE_HEADERS.type,
      `${CE_HEADERS.type}: ${type} is not expected here (expected ${expected.join(', ')})`,
    );
  }
  if (record.value === null || record.value.length === 0) {
    return decodeFailure('MISSING_VALUE', 'value', 'value: the message has no data');
  }
  if (record.value.length > MAX_EVENT_BYTES) {
    return decodeFailure(
      'TOO_LARGE',
      'value',
      `value: ${record.value.length} bytes exceeds ${MAX_EVENT_BYTES}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(record.value.toString());
  } catch (error) {
    return decodeFailure(
      'INVALID_JSON',
      'value',
      `value: not valid JSON (${(error as Error).message})`,
    );
  }
  const data = EVENTS[type].data.safeParse(json);
  if (!data.success) {
    const failure = fromZodIssues(data.error.issues, 'data');
    return decodeFailure('SCHEMA_VIOLATION', failure.field, failure.message, failure.issues);
  }
  const itemId = data.data.item_id;
  if (h[CE_HEADERS.subject] !== itemId) {
    return decodeFailure(
      'SUBJECT_MISMATCH',
      CE_HEADERS.subject,
      `${CE_HEADERS.subject}: must equal data.item_id`,
    );
  }
  const key = record.key === null ? null : record.key.toString();
  if (key !== itemId) {
    return decodeFailure('KEY_MISMATCH', 'key', 'key: the message key must equal data.item_id');
  }
  const metadata: EventMetadata = {
    id: h[CE_HEADERS.id],
    source: h[CE_HEADERS.source],
    time: h[CE_HEADERS.time],
    ...(h[CE_HEADERS.correlationid] ? { correlationId: h[CE_HEADERS.correlationid] } : {}),
    ...(h[CE_HEADERS.causationid] ? { causationId: h[CE_HEADERS.causationid] } : {}),
    ...traceContext(raw),
  };
  return { ok: true, value: { type, data: data.data, metadata } as CashflowEvent };
}

/** Header values as strings; a header given more than once counts by its last value. */
function readHeaders(headers: KafkaRecord['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const [name, raw] of Object.entries(headers)) {
    const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (value !== undefined) out[name.toLowerCase()] = value.toString();
  }
  return out;
}
