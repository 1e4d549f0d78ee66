import { commonVariables, kafkaVariables, loadConfig } from '@cashflow/config';
import {
  DLQ_HEADERS,
  TOPICS,
  TOPIC_KEYS,
  decodeEvent,
  topicName,
  type CashflowEvent,
} from '@cashflow/contracts';
import { partitioner } from '@cashflow/kafka';
import type { Command } from 'commander';
import type { IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { z } from 'zod';
import { cliLogger, kafkaFrom } from './clients';
import { read } from './log-reader';
import { textTable } from './output';

const SERVICE = 'cli';

function kafkaFromEnv(): { kafka: Kafka; prefix: string } {
  const env = loadConfig(SERVICE, z.object({ ...commonVariables, ...kafkaVariables }));
  return { kafka: kafkaFrom(env, cliLogger('error')), prefix: env.KAFKA_TOPIC_PREFIX };
}

function header(headers: IHeaders | undefined, name: string): string | null {
  const value = headers?.[name];
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  return last === undefined ? null : last.toString();
}

/** One line about an event: the fields that tell what happened. */
function summary(event: CashflowEvent): string {
  switch (event.type) {
    case 'RefreshRequested':
      return `days=${event.data.days_requested ?? 'default'}`;
    case 'RefreshAccepted':
      return `request=${event.data.refresh_request_id} plaid_request_id=${event.data.plaid_request_id}`;
    case 'RefreshFailed':
      return `request=${event.data.refresh_request_id} error=${event.data.error.error_code}${event.data.item_health ? ` refused=${event.data.item_health.status}` : ''}`;
    case 'ReportReady':
      return event.data.poll
        ? `received_at=${event.data.received_at} found_by=polling requests=${event.data.poll.refresh_request_ids.join(',')}`
        : `received_at=${event.data.received_at}`;
    case 'ReportFailed':
      return `error=${event.data.error.error_code}`;
    case 'ReportOverdue':
      return `requests=${event.data.refresh_request_ids.join(',')} polls=${event.data.polls}`;
    case 'PlaidWebhookReceived':
      return `${event.data.webhook_type}/${event.data.webhook_code}`;
    case 'ReportFetched':
      return `fetch=${event.data.fetch_id} days=${event.data.days_requested} transactions=${event.data.transactions} added=${event.data.added} modified=${event.data.modified} removed=${event.data.removed}`;
    case 'ReportFetchFailed':
      return `fetch=${event.data.fetch_id} error=${event.data.error.error_code}`;
    case 'ItemNeedsAttention': {
      const { status, reason, consent_expires_at } = event.data.health;
      return `health=${status} ${reason ? `reason=${reason}` : `until=${consent_expires_at}`} cause=${event.data.cause.kind}`;
    }
    case 'ItemHealthRestored':
      return `health=healthy was=${event.data.previous.status} cause=${event.data.cause.kind}`;
  }
}

/** `events tail` and `dlq list|replay`: the event log and the dead-letter topic. */
export function addEventsCommands(program: Command): void {
  addTailCommand(program.command('events').description('The event topics (KAFKA_*).'));
  const dlq = program
    .command('dlq')
    .description('The dead-letter topic: records a consumer could not use (KAFKA_*).');
  addDlqListCommand(dlq);
  addDlqReplayCommand(dlq);
}

function addTailCommand(events: Command): void {
  events
    .command('tail')
    .description('Print events as they are published, until Ctrl-C (or --count).')
    .option('--item <item_id>', 'only this Item')
    .option('--from-beginning', 'start at the beginning of each topic, not its end')
    .option('--count <n>', 'stop after this many events')
    .option('--json', 'print each event as JSON')
    .action(
      async (opts: { item?: string; fromBeginning?: boolean; count?: string; json?: boolean }) => {
        const { kafka, prefix } = kafkaFromEnv();
        const topics = TOPIC_KEYS.filter((k) => TOPICS[k].records === 'events').map((k) =>
          topicName(k, prefix),
        );
        const limit = opts.count === undefined ? Infinity : Number(opts.count);
        let printed = 0;
        await read(
          kafka,
          topics,
          { fromBeginning: Boolean(opts.fromBeginning), toEnd: false },
          ({ message }) => {
            const decoded = decodeEvent(message);
            if (!decoded.ok) return;
            const event = decoded.value;
            if (opts.item && event.data.item_id !== opts.item) return;
            process.stdout.write(
              opts.json
                ? `${JSON.stringify(event)}\n`
                : `${event.metadata.time}  ${event.type.padEnd(20)}  ${event.data.item_id}  ${summary(event)}\n`,
            );
            printed += 1;
            return printed < limit;
          },
        );
      },
    );
}

function addDlqListCommand(dlq: Command): void {
  dlq
    .command('list')
    .description('Every dead-lettered record with its reason, oldest first.')
    .option('--json', 'print JSON lines')
    .action(async (opts: { json?: boolean }) => {
      const { kafka, prefix } = kafkaFromEnv();
      const rows: Record<string, unknown>[] = [];
      for (const [id, message] of await readDeadLetters(kafka, prefix)) {
        const h = (name: string) => header(message.headers, name);
        rows.push({
          id,
          time: h(DLQ_HEADERS.time),
          consumer: h(DLQ_HEADERS.consumer),
          source: `${h(DLQ_HEADERS.sourceTopic)}@${h(DLQ_HEADERS.sourcePartition)}:${h(DLQ_HEADERS.sourceOffset)}`,
          error_code: h(DLQ_HEADERS.errorCode),
          reason: h(DLQ_HEADERS.reason),
        });
      }
      if (opts.json) {
        for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
      } else {
        process.stdout.write(
          rows.length === 0
            ? 'the dead-letter topic is empty\n'
            : `${textTable(rows, ['id', 'time', 'consumer', 'source', 'error_code', 'reason'])}\n`,
        );
      }
    });
}

function addDlqReplayCommand(dlq: Command): void {
  dlq
    .command('replay <id...>')
    .description(
      'Publish dead-lettered records (ids as `dlq list` shows them, partition:offset) again to the topic they came from, as they were (dlq_* headers removed). Use it once the consumer that rejected them is fixed: a record that is itself wrong fails again.',
    )
    .action(async (ids: string[]) => {
      for (const id of ids) {
        if (!/^\d+:\d+$/.test(id)) {
          throw new Error(`${id}: not a dead-letter id (partition:offset)`);
        }
      }
      const { kafka, prefix } = kafkaFromEnv();
      const wanted = new Set(ids);
      const found = new Map(
        [...(await readDeadLetters(kafka, prefix))].filter(([id]) => wanted.has(id)),
      );
      const missing = ids.filter((id) => !found.has(id));
      if (missing.length) throw new Error(`not on the dead-letter topic: ${missing.join(', ')}`);
      // The project's partitioner, so a replayed record lands on its key's partition.
      const producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: partitioner,
      });
      await producer.connect();
      try {
        for (const [id, message] of found) {
          const source = replayTarget(id, message);
          await producer.send({
            topic: source,
            acks: -1,
            messages: [
              { key: message.key, value: message.value, headers: originalHeaders(message) },
            ],
          });
          process.stdout.write(`replayed ${id} to ${source}\n`);
        }
      } finally {
        await producer.disconnect();
      }
    });
}

/** Every record of the dead-letter topic, by its id (`partition:offset`), oldest first. */
async function readDeadLetters(kafka: Kafka, prefix: string): Promise<Map<string, KafkaMessage>> {
  const records = new Map<string, KafkaMessage>();
  await read(
    kafka,
    [topicName('deadLetter', prefix)],
    { fromBeginning: true, toEnd: true },
    ({ partition, message }) => {
      records.set(`${partition}:${message.offset}`, message);
    },
  );
  return records;
}

/** The topic a dead letter came from; refuses those that cannot be replayed there. */
function replayTarget(id: string, message: KafkaMessage): string {
  const source = header(message.headers, DLQ_HEADERS.sourceTopic);
  if (!source || source.startsWith('http:')) {
    throw new Error(
      `${id} did not come from a Kafka topic (${source ?? 'unknown'}); nothing to replay it to`,
    );
  }
  const truncated = header(message.headers, DLQ_HEADERS.valueTruncated);
  if (truncated !== null) {
    throw new Error(
      `${id} holds only the start of a ${truncated}-byte value; the whole record is at ${source} partition ${header(message.headers, DLQ_HEADERS.sourcePartition) ?? '?'} offset ${header(message.headers, DLQ_HEADERS.sourceOffset) ?? '?'}`,
    );
  }
  return source;
}

/** The record's headers as it was before it was dead-lettered. */
function originalHeaders(message: KafkaMessage): IHeaders {
  const headers: IHeaders = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (!name.startsWith('dlq_') && value !== undefined) headers[name] = value;
  }
  return headers;
}
