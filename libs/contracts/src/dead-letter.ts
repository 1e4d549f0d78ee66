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
} as const;

export const DLQ_HEADER_DESCRIPTIONS: Readonly<Record<keyof typeof DLQ_HEADERS, string>> = {
  reason: 'One line naming the field and what is wrong with it.',
  errorCode: 'Machine-readable reason, e.g. SCHEMA_VIOLATION, INVALID_JSON, MISSING_HEADER.',
  field: 'The first offending field, e.g. data.item_id or ce_time.',
  sourceTopic: 'Topic the record was consumed from (or the HTTP route it arrived on).',
  sourcePartition: 'Partition it was consumed from.',
  sourceOffset: 'Offset it was consumed at.',
  consumer: 'The consumer (group) that rejected it.',
  time: 'When it was dead-lettered (RFC 3339).',
};
