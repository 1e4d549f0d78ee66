/**
 * Builds the AsyncAPI 3 description of every topic from the code's own schemas. The committed
 * docs/asyncapi.yaml is this document; a test fails when the two differ.
 */
import { DLQ_HEADERS, DLQ_HEADER_DESCRIPTIONS } from './dead-letter';
import { CHANGELOG_HEADERS, ChangelogKey, ChangelogTransaction } from './transactions-changelog';
import { z } from 'zod';
import { EVENTS, EVENT_TYPES, type EventType } from './events';
import { dataJsonSchema, headersJsonSchema, type JsonSchema } from './json-schema';
import { DEFAULT_PARTITIONS, TOPICS, TOPIC_KEYS, type TopicKey } from './topics';

const DRAFT_07 = 'application/schema+json;version=draft-07';

/** What the service does with each topic: consume it, or publish to it. */
const ACTIONS: Record<TopicKey, 'receive' | 'send'> = {
  refreshRequested: 'receive',
  refreshOutcomes: 'send',
  reportOutcomes: 'send',
  reportFetches: 'send',
  plaidWebhooks: 'send',
  itemHealth: 'send',
  transactions: 'send',
  deadLetter: 'send',
};

export function buildAsyncApiDocument(): JsonSchema {
  const channels: JsonSchema = {};
  const operations: JsonSchema = {};
  const messages: JsonSchema = {};

  for (const type of EVENT_TYPES) messages[type] = eventMessage(type);
  messages.DeadLetterRecord = deadLetterMessage();
  messages.ChangelogTransaction = changelogMessage();

  for (const key of TOPIC_KEYS) {
    const topic = TOPICS[key];
    const names: string[] =
      topic.records === 'events'
        ? [...topic.events]
        : topic.records === 'dead-letters'
          ? ['DeadLetterRecord']
          : ['ChangelogTransaction'];
    const keyIs =
      topic.records === 'transactions-changelog'
        ? '{"item_id","transaction_id"} as JSON'
        : 'item_id';
    channels[key] = {
      address: topic.name,
      description: `${topic.description} Message key: ${keyIs}. Topic names get the deployment's KAFKA_TOPIC_PREFIX in front.`,
      messages: Object.fromEntries(
        names.map((name) => [name, { $ref: `#/components/messages/${name}` }]),
      ),
      bindings: {
        kafka: {
          topic: topic.name,
          partitions: DEFAULT_PARTITIONS,
          topicConfiguration: topicConfiguration(topic.configs),
          bindingVersion: '0.5.0',
        },
      },
    };
    const action = ACTIONS[key];
    operations[`${action}-${key}`] = {
      action,
      channel: { $ref: `#/channels/${key}` },
      summary:
        action === 'receive'
          ? `cashflow-refresh consumes ${topic.name}.`
          : `cashflow-refresh publishes to ${topic.name}.`,
      messages: names.map((name) => ({ $ref: `#/channels/${key}/messages/${name}` })),
    };
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'cashflow-refresh events',
      version: '1.0.0',
      description:
        'Events of cashflow-refresh over Kafka: CloudEvents 1.0 in binary content mode (context attributes in ce_* headers, data as JSON in the value, key = item_id). Generated from libs/contracts; do not edit by hand.',
    },
    defaultContentType: 'application/json',
    servers: {
      local: {
        host: '127.0.0.1:19092',
        protocol: 'kafka',
        description: 'The broker scripts/local-infra.sh starts.',
      },
    },
    channels,
    operations,
    components: { messages },
  };
}

function eventMessage(type: EventType): JsonSchema {
  const data = dataJsonSchema(type);
  return {
    name: type,
    title: `${type} v${EVENTS[type].version}`,
    summary: typeof data.description === 'string' ? data.description : type,
    contentType: 'application/json',
    correlationId: { location: '$message.header#/ce_correlationid' },
    headers: { schemaFormat: DRAFT_07, schema: headersJsonSchema(type) },
    payload: { schemaFormat: DRAFT_07, schema: data },
    bindings: {
      kafka: { key: { type: 'string', description: 'The item_id.' }, bindingVersion: '0.5.0' },
    },
  };
}

/** The binding's topicConfiguration: the configs the project sets that the binding can name. */
function topicConfiguration(configs: Readonly<Record<string, string>>): JsonSchema {
  const out: JsonSchema = { 'cleanup.policy': [configs['cleanup.policy']] };
  for (const name of ['retention.ms', 'retention.bytes', 'delete.retention.ms']) {
    if (configs[name] !== undefined) out[name] = Number(configs[name]);
  }
  return out;
}

function changelogMessage(): JsonSchema {
  const schemaOf = (schema: z.ZodType) => {
    const json = z.toJSONSchema(schema, { target: 'draft-7', io: 'input' });
    delete json.$schema;
    return json;
  };
  return {
    name: 'ChangelogTransaction',
    title: 'Changelog transaction v1',
    summary:
      "A stored transaction's latest state; a null value (tombstone) when it was removed. Not a CloudEvent.",
    contentType: 'application/json',
    headers: {
      schemaFormat: DRAFT_07,
      schema: {
        type: 'object',
        required: [CHANGELOG_HEADERS.change, CHANGELOG_HEADERS.fetchId],
        properties: {
          [CHANGELOG_HEADERS.change]: {
            enum: ['added', 'modified', 'removed'],
            description: 'What the fetch did to the transaction.',
          },
          [CHANGELOG_HEADERS.fetchId]: {
            type: 'string',
            description: 'The fetch (ReportFetched.fetch_id) the record comes from.',
          },
          [CHANGELOG_HEADERS.contentType]: { const: 'application/json' },
        },
      },
    },
    payload: {
      schemaFormat: DRAFT_07,
      schema: { oneOf: [schemaOf(ChangelogTransaction), { type: 'null' }] },
    },
    bindings: {
      kafka: { key: schemaOf(ChangelogKey), bindingVersion: '0.5.0' },
    },
  };
}

function deadLetterMessage(): JsonSchema {
  const properties = Object.fromEntries(
    (Object.keys(DLQ_HEADERS) as (keyof typeof DLQ_HEADERS)[]).map((k) => [
      DLQ_HEADERS[k],
      { type: 'string', description: DLQ_HEADER_DESCRIPTIONS[k] },
    ]),
  );
  return {
    name: 'DeadLetterRecord',
    title: 'Dead-letter record',
    summary: 'A record a consumer rejected, kept byte for byte with the reason in headers.',
    headers: {
      schemaFormat: DRAFT_07,
      schema: {
        type: 'object',
        required: [DLQ_HEADERS.reason, DLQ_HEADERS.errorCode, DLQ_HEADERS.sourceTopic],
        properties,
      },
    },
    payload: {
      schemaFormat: DRAFT_07,
      schema: { description: 'The original value, unchanged (may not be JSON).' },
    },
  };
}
