import { cliVariables, commonVariables, kafkaVariables, loadConfig } from '@cashflow/config';
import {
  CLI_SOURCE,
  DEFAULT_DAYS_REQUESTED,
  ItemId,
  createEvent,
  decodeEvent,
  topicName,
  type CashflowEvent,
} from '@cashflow/contracts';
import { EventPublisher } from '@cashflow/kafka';
import type { Kafka } from 'kafkajs';
import { cliLogger, kafkaFrom } from './clients';
import type { Command } from 'commander';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';

const SERVICE = 'cli';

/** Exit status of `refresh --wait` when the refresh failed (0 is ready, 1 any other error). */
export const EXIT_REFRESH_FAILED = 3;
/** Exit status of `refresh --wait` when nothing final arrived in time. */
export const EXIT_TIMED_OUT = 4;

/** Set by an action to choose the process's exit status. */
export const outcome = { exitCode: 0 };

async function projectorApi(path: string): Promise<unknown> {
  const env = loadConfig(SERVICE, z.object({ ...cliVariables }));
  if (!env.PROJECTOR_API_TOKEN) {
    throw new Error(
      'PROJECTOR_API_TOKEN is not set: export one of the tokens of PROJECTOR_API_TOKENS (the part after "name:")',
    );
  }
  const response = await fetch(new URL(path, env.PROJECTOR_URL), {
    headers: { authorization: `Bearer ${env.PROJECTOR_API_TOKEN}` },
  }).catch((error: Error) => {
    throw new Error(`the projector at ${env.PROJECTOR_URL} did not answer (${error.message})`);
  });
  const body = (await response.json()) as { error?: { message?: string } };
  if (!response.ok)
    throw new Error(body.error?.message ?? `the projector answered ${response.status}`);
  return body;
}

type Row = Record<string, unknown>;

/** Rows as an aligned text table; null shows as "-". */
export function textTable(rows: Row[], columns: string[]): string {
  const cell = (v: unknown): string => {
    if (v === null || v === undefined) return '-';
    if (typeof v === 'string') return v;
    return typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  };
  const cells = [columns, ...rows.map((r) => columns.map((c) => cell(r[c])))];
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text()}\n`);
}

const daysOption = z.coerce
  .number()
  .int()
  .min(1, 'must be an integer from 1 to 730')
  .max(730, 'must be an integer from 1 to 730');

/** What `refresh --wait` saw happen to the request. */
interface Progress {
  readonly step: 'requested' | 'accepted' | 'ready' | 'failed';
  readonly at: string;
  readonly detail: Record<string, unknown>;
}

/**
 * `refresh`, `status` and `list`: ask for a refresh (Kafka) and read the projection (the
 * projector's read API).
 */
export function addRefreshCommands(program: Command): void {
  program
    .command('refresh <item_id>')
    .description(
      'Publish a RefreshRequested for the Item (KAFKA_*). With --wait, show its progress until the outcome and, once accepted, the report.',
    )
    .option('--days <n>', `days of history, 1 to 730 (default ${DEFAULT_DAYS_REQUESTED})`)
    .option('--wait', 'wait for the outcome and the report')
    .option('--timeout <seconds>', 'with --wait: give up after this long', '600')
    .option('--requested-by <name>', 'who is asking, for ops', 'cashflow-refresh cli')
    .option('--json', 'print JSON lines')
    .action(
      async (
        rawItemId: string,
        opts: {
          days?: string;
          wait?: boolean;
          timeout: string;
          requestedBy: string;
          json?: boolean;
        },
      ) => {
        const itemId = ItemId.parse(rawItemId);
        const days =
          opts.days === undefined ? undefined : parseOption('--days', daysOption, opts.days);
        const timeoutS = parseOption('--timeout', z.coerce.number().positive(), opts.timeout);
        const env = loadConfig(SERVICE, z.object({ ...commonVariables, ...kafkaVariables }));
        const logger = cliLogger('error');
        const kafka = kafkaFrom(env, logger);
        const event = createEvent(
          'RefreshRequested',
          {
            item_id: itemId,
            ...(days === undefined ? {} : { days_requested: days }),
            requested_by: opts.requestedBy,
          },
          {
            id: randomUUID(),
            source: CLI_SOURCE,
            time: new Date().toISOString(),
          },
        );
        const show = (p: Progress) =>
          print(Boolean(opts.json), { request_id: event.metadata.id, ...p }, () =>
            [
              `${p.at}  ${p.step.padEnd(9)}`,
              ...Object.entries(p.detail).map(([k, v]) => `${k}=${String(v)}`),
            ].join(' '),
          );

        const watcher = opts.wait ? await watch(kafka, env.KAFKA_TOPIC_PREFIX) : undefined;
        const publisher = new EventPublisher(kafka, env.KAFKA_TOPIC_PREFIX);
        await publisher.connect();
        try {
          await publisher.publish(event);
        } finally {
          await publisher.disconnect();
        }
        show({
          step: 'requested',
          at: event.metadata.time,
          detail: { item_id: itemId, days_requested: days ?? DEFAULT_DAYS_REQUESTED },
        });
        if (!watcher) return;
        try {
          const final = await watcher.follow(event.metadata.id, itemId, timeoutS * 1000, show);
          if (final === 'failed') outcome.exitCode = EXIT_REFRESH_FAILED;
          if (final === 'timed_out') {
            process.stderr.write(`no outcome within ${timeoutS} s; the request stays published\n`);
            outcome.exitCode = EXIT_TIMED_OUT;
          }
        } finally {
          await watcher.stop();
        }
      },
    );

  program
    .command('status <item_id>')
    .description(
      "The Item's refresh state and latest refreshes (PROJECTOR_URL, PROJECTOR_API_TOKEN).",
    )
    .option('--json', 'print JSON')
    .action(async (rawItemId: string, opts: { json?: boolean }) => {
      const itemId = encodeURIComponent(ItemId.parse(rawItemId));
      const state = (await projectorApi(`/items/${itemId}/refresh-state`)) as Row;
      const refreshes = (
        (await projectorApi(`/items/${itemId}/refreshes?limit=5`)) as { refreshes: Row[] }
      ).refreshes;
      print(Boolean(opts.json), { ...state, refreshes }, () => {
        const error = state.last_error as Row | null;
        const lines = [
          `${String(state.item_id)}: ${String(state.status)}${state.stuck ? ' (stuck)' : ''}`,
          `  latest request ${String(state.latest_request_id)}, ${String(state.days_requested)} days, ${String(state.refreshes)} refreshes ready`,
          `  requested ${String(state.requested_at)}  accepted ${String(state.accepted_at)}  ready ${String(state.ready_at)}  failed ${String(state.failed_at)}`,
        ];
        if (error) {
          lines.push(
            `  last error ${String(error.code)} (${String(error.source)}) at ${String(error.at)}: ${String(error.message)}`,
          );
        }
        lines.push(
          '',
          textTable(refreshes, [
            'request_id',
            'status',
            'requested_at',
            'seconds_to_accept',
            'seconds_to_ready',
          ]),
        );
        return lines.join('\n');
      });
    });

  program
    .command('list')
    .description('Items by status, last error code or stuck (PROJECTOR_URL, PROJECTOR_API_TOKEN).')
    .option('--status <status>', 'requested, refreshing, ready or failed')
    .option('--error-code <code>', 'Items whose last error has this code')
    .option('--stuck', 'only Items accepted long ago with no webhook since')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(
      async (opts: {
        status?: string;
        errorCode?: string;
        stuck?: boolean;
        limit: string;
        json?: boolean;
      }) => {
        const query = new URLSearchParams({ limit: opts.limit });
        if (opts.status) query.set('status', opts.status);
        if (opts.errorCode) query.set('error_code', opts.errorCode);
        if (opts.stuck) query.set('stuck', 'true');
        const page = (await projectorApi(`/items?${query.toString()}`)) as { items: Row[] };
        const rows = page.items.map((i) => ({
          ...i,
          last_error_code: (i.last_error as Row | null)?.code ?? null,
        }));
        print(Boolean(opts.json), page, () =>
          textTable(rows, [
            'item_id',
            'status',
            'stuck',
            'accepted_at',
            'ready_at',
            'last_error_code',
          ]),
        );
      },
    );
}

function parseOption<T extends z.ZodType>(name: string, schema: T, value: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new Error(`${name}: ${result.error.issues[0]?.message ?? 'invalid'}`);
  return result.data;
}

/**
 * Follows one request on the outcome and report topics, from their ends as they were before
 * the request was published (so nothing in between is missed).
 */
async function watch(kafka: Kafka, prefix: string) {
  const topics = [topicName('refreshOutcomes', prefix), topicName('reportOutcomes', prefix)];
  const admin = kafka.admin();
  await admin.connect();
  const ends: { topic: string; partition: number; offset: string }[] = [];
  try {
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) {
        ends.push({ topic, partition: p.partition, offset: p.high });
      }
    }
  } finally {
    await admin.disconnect();
  }
  const groupId = `${prefix}cashflow-cli-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
  const seen: CashflowEvent[] = [];
  let wake: () => void = () => undefined;
  const ids = new Set<string>();
  await consumer.connect();
  await consumer.subscribe({ topics });
  // kafkajs drops seeks made before the group is joined, so wait for the join, then seek; the
  // request is published only after that, so its outcome cannot slip past.
  const joined = new Promise<void>((resolve) =>
    consumer.on(consumer.events.GROUP_JOIN, () => resolve()),
  );
  await consumer.run({
    eachMessage: ({ message }) => {
      const decoded = decodeEvent(message);
      // A record can come twice: once from where the group started, again after the seek.
      if (decoded.ok && !ids.has(decoded.value.metadata.id)) {
        ids.add(decoded.value.metadata.id);
        seen.push(decoded.value);
        wake();
      }
      return Promise.resolve();
    },
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    joined,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error('could not join a Kafka consumer group within 30 s')),
        30_000,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  for (const end of ends) consumer.seek(end);

  return {
    async follow(
      requestId: string,
      itemId: string,
      timeoutMs: number,
      show: (p: Progress) => void,
    ): Promise<'ready' | 'failed' | 'timed_out'> {
      const deadline = Date.now() + timeoutMs;
      let acceptedAt: number | undefined;
      for (let i = 0; ;) {
        for (; i < seen.length; i++) {
          const event = seen[i]!;
          if (event.data.item_id !== itemId) continue;
          if (event.type === 'RefreshFailed' && event.data.refresh_request_id === requestId) {
            show({
              step: 'failed',
              at: event.data.failed_at,
              detail: {
                error_code: event.data.error.error_code,
                retryable: event.data.retryable,
                message: event.data.error.error_message,
              },
            });
            return 'failed';
          }
          if (event.type === 'RefreshAccepted' && event.data.refresh_request_id === requestId) {
            acceptedAt = Date.parse(event.data.accepted_at);
            show({
              step: 'accepted',
              at: event.data.accepted_at,
              detail: {
                plaid_request_id: event.data.plaid_request_id,
                attempts: event.data.attempts,
                ...(event.data.coalesced_into ? { coalesced_into: event.data.coalesced_into } : {}),
              },
            });
          }
          // The projection's rule: a report received after the acceptance (1 s of clock
          // tolerance) answers it. Reports read before the acceptance wait in `seen`.
        }
        if (acceptedAt !== undefined) {
          const report = seen.find(
            (e) =>
              (e.type === 'ReportReady' || e.type === 'ReportFailed') &&
              e.data.item_id === itemId &&
              Date.parse(e.data.received_at) + 1000 >= acceptedAt!,
          );
          if (report?.type === 'ReportReady') {
            show({
              step: 'ready',
              at: report.data.received_at,
              detail: { report_event_id: report.metadata.id },
            });
            return 'ready';
          }
          if (report?.type === 'ReportFailed') {
            show({
              step: 'failed',
              at: report.data.received_at,
              detail: {
                error_code: report.data.error.error_code,
                message: report.data.error.error_message,
              },
            });
            return 'failed';
          }
        }
        const left = deadline - Date.now();
        if (left <= 0) return 'timed_out';
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 1000));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
    async stop() {
      await consumer.disconnect();
      const cleanup = kafka.admin();
      await cleanup.connect();
      await cleanup.deleteGroups([groupId]).catch(() => undefined);
      await cleanup.disconnect();
    },
  };
}
