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
