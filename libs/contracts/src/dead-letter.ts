import { createHash } from 'node:crypto';

/**
 * Dead-letter records keep the original key, value and headers untouched and add these headers,
 * so a record can be read, fixed and replayed to its source topic.
 */
export const DLQ_HEADERS = {
  reason: 'dlq_reason',
  errorCode: 'dlq_error_code',
  field: 'dlq_field',
  sourceTopic: 'dlq_source_topic',
  sourcePartition: 'dlq_source_partition',
  sourceOffset: 'dlq_source_offset',
  consumer: 'dlq_consumer',
  time: 'dlq_time',
  valueTruncated: 'dlq_value_truncated',
  valueSha256: 'dlq_value_sha256',
} as const;

/**
 * A value longer than this is dead-lettered truncated to its first MAX_DEAD_LETTER_VALUE_BYTES,
 * with its full length and SHA-256 in headers: a record at the size limit of its topic, plus the
 * dlq_* headers, could exceed the dead-letter topic's limit, and a dead letter that cannot be
 * written would stop its consumer. The whole record stays at its source position.
 */
export const MAX_DEAD_LETTER_VALUE_BYTES = 64 * 1024;

export const DLQ_HEADER_DESCRIPTIONS: Readonly<Record<keyof typeof DLQ_HEADERS, string>> = {
  reason: 'One line naming the field and what is wrong with it.',
  errorCode: 'Machine-readable reason, e.g. SCHEMA_VIOLATION, INVALID_JSON, MISSING_HEADER.',
  field: 'The first offending field, e.g. data.item_id or ce_time.',
  sourceTopic: 'Topic the record was consumed from (or the HTTP route it arrived on).',
  sourcePartition: 'Partition it was consumed from.',
  sourceOffset: 'Offset it was consumed at.',
  consumer: 'The consumer (group) that rejected it.',
  time: 'When it was dead-lettered (RFC 3339).',
  valueTruncated:
    'Present when the value was too large to copy: its length in bytes. The value holds its first 64 KiB; the whole record is at the source position.',
  valueSha256: 'With dlq_value_truncated: the SHA-256 (hex) of the whole original value.',
};

/** Why a record is dead-lettered: a DecodeError, or the ingress's own refusal of a webhook. */
export interface DeadLetterReason {
  /** Machine-readable, e.g. SCHEMA_VIOLATION, INVALID_JSON, UNROUTABLE_WEBHOOK. */
  readonly code: string;
  /** The first offending field. */
  readonly field: string;
  /** One line a person can act on. */
  readonly message: string;
}

/**
 * Where the refused record was: a position in a topic, or the HTTP route it arrived on (the
 * webhook ingress), recorded as `dlq_source_topic` `http:<route>` with no partition or offset.
 */
export type DeadLetterSource =
  | { readonly topic: string; readonly partition: number; readonly offset: string }
  | { readonly route: string };

type DeadLetterHeaderValue = Buffer | string | (Buffer | string)[] | undefined;

/** The record to refuse: a consumed Kafka record, or the bytes an HTTP request carried. */
export interface RefusedRecord {
  readonly key: Buffer | string | null;
  readonly value: Buffer | string | null;
  readonly headers?: Readonly<Record<string, DeadLetterHeaderValue>>;
}

/** A dead-letter record, ready to produce to the dead-letter topic. */
export interface DeadLetterRecord {
  readonly key: Buffer | string | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, Buffer | string>;
}

/** `dlq_reason` is one line; a longer message is cut here. */
const MAX_REASON_CHARS = 1000;

/**
 * The one way a dead-letter record is built, whoever refuses the record: the original key, value
 * and headers kept byte for byte (the last value of a repeated header; any dlq_* header of an
 * earlier dead-lettering replaced), plus the dlq_* headers saying why, where and when. A value
 * over MAX_DEAD_LETTER_VALUE_BYTES is cut to that length, with its full length and SHA-256 in
 * headers. Pure: the time is passed in.
 */
export function deadLetterRecord(
  record: RefusedRecord,
  reason: DeadLetterReason,
  source: DeadLetterSource,
  consumer: string,
  time: Date,
): DeadLetterRecord {
  const headers: Record<string, Buffer | string> = {};
  for (const [name, value] of Object.entries(record.headers ?? {})) {
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last !== undefined && !name.startsWith('dlq_')) headers[name] = last;
  }
  headers[DLQ_HEADERS.reason] = reason.message.slice(0, MAX_REASON_CHARS);
  headers[DLQ_HEADERS.errorCode] = reason.code;
  headers[DLQ_HEADERS.field] = reason.field;
  if ('route' in source) {
    headers[DLQ_HEADERS.sourceTopic] = `http:${source.route}`;
  } else {
    headers[DLQ_HEADERS.sourceTopic] = source.topic;
    headers[DLQ_HEADERS.sourcePartition] = String(source.partition);
    headers[DLQ_HEADERS.sourceOffset] = source.offset;
  }
  headers[DLQ_HEADERS.consumer] = consumer;
  headers[DLQ_HEADERS.time] = time.toISOString();

  const value = typeof record.value === 'string' ? Buffer.from(record.value) : record.value;
  if (value === null || value.length <= MAX_DEAD_LETTER_VALUE_BYTES) {
    return { key: record.key, value, headers };
  }
  headers[DLQ_HEADERS.valueTruncated] = String(value.length);
  headers[DLQ_HEADERS.valueSha256] = createHash('sha256').update(value).digest('hex');
  return { key: record.key, value: value.subarray(0, MAX_DEAD_LETTER_VALUE_BYTES), headers };
}
