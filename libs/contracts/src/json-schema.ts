import { z } from 'zod';
import { CE_HEADERS, JSON_CONTENT_TYPE } from './kafka-binding';
import { EVENTS, type EventType } from './events';

export type JsonSchema = Record<string, unknown>;

/**
 * JSON Schema (draft-07) of an event's data, emitted from the same zod schema the code validates
 * with. Objects stay open (no additionalProperties: false): consumers must tolerate fields added
 * within a version.
 */
export function dataJsonSchema(type: EventType): JsonSchema {
  const schema = z.toJSONSchema(EVENTS[type].data, { target: 'draft-7', io: 'input' });
  delete schema.$schema;
  return schema;
}

/** JSON Schema of the Kafka headers of an event (CloudEvents binary mode). */
export function headersJsonSchema(type: EventType): JsonSchema {
  const id = { type: 'string', minLength: 1, maxLength: 200 };
  return {
    type: 'object',
    required: [
      CE_HEADERS.specversion,
      CE_HEADERS.id,
      CE_HEADERS.source,
      CE_HEADERS.type,
      CE_HEADERS.time,
      CE_HEADERS.subject,
      CE_HEADERS.contentType,
    ],
    properties: {
      [CE_HEADERS.specversion]: { const: '1.0' },
      [CE_HEADERS.id]: { ...id, description: 'Unique event id; kept when republished.' },
      [CE_HEADERS.source]: { type: 'string', minLength: 1, maxLength: 500 },
      [CE_HEADERS.type]: { const: EVENTS[type].cloudEventType },
      [CE_HEADERS.time]: { type: 'string', format: 'date-time' },
      [CE_HEADERS.subject]: { type: 'string', description: 'The item_id.' },
      [CE_HEADERS.correlationid]: {
        ...id,
        description: 'Id of the RefreshRequested this event answers or follows from.',
      },
      [CE_HEADERS.causationid]: { ...id, description: 'Id of the event that caused this one.' },
      [CE_HEADERS.traceparent]: {
        type: 'string',
        pattern: '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$',
        description:
          'CloudEvents distributed-tracing extension: W3C traceparent of the span that produced the event. Optional; a RefreshRequested that carries one has its trace continued. An invalid value is ignored, never refused.',
        examples: ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
      },
      [CE_HEADERS.tracestate]: {
        type: 'string',
        maxLength: 512,
        description: 'W3C tracestate, travelling with ce_traceparent.',
      },
      [CE_HEADERS.contentType]: { const: JSON_CONTENT_TYPE },
    },
  };
}
