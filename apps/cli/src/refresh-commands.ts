import { cliVariables, commonVariables, kafkaVariables, loadConfig } from '@cashflow/config';
import {
  CLI_SOURCE,
  DEFAULT_DAYS_REQUESTED,
  ItemId,
  createEvent,
  type RefreshRequested,
} from '@cashflow/contracts';
import { EventPublisher } from '@cashflow/kafka';
import type { Command } from 'commander';
import type { Kafka } from 'kafkajs';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { cliLogger, kafkaFrom } from './clients';
import { followOutcomes, type Progress } from './refresh-progress';

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

/**
 * `refresh`, `status` and `list`: ask for a refresh (Kafka) and read the projection (the
 * projector's read API).
 */
export function addRefreshCommands(program: Command): void {
  addRefreshCommand(program);
  addStatusCommand(program);
  addListCommand(program);
}

interface RefreshOptions {
  readonly days?: string;
  readonly wait?: boolean;
  readonly timeout: string;
  readonly requestedBy: string;
  readonly json?: boolean;
}

function addRefreshCommand(program: Command): void {
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
    .action(async (rawItemId: string, opts: RefreshOptions) => {
      const event = refreshRequested(rawItemId, opts);
      const timeoutS = parseOption('--timeout', z.coerce.number().positive(), opts.timeout);
      const env = loadConfig(SERVICE, z.object({ ...commonVariables, ...kafkaVariables }));
      const kafka = kafkaFrom(env, cliLogger('error'));
      const show = (p: Progress) =>
        print(Boolean(opts.json), { request_id: event.metadata.id, ...p }, () =>
          [
            `${p.at}  ${p.step.padEnd(9)}`,
            ...Object.entries(p.detail).map(([k, v]) => `${k}=${String(v)}`),
          ].join(' '),
        );

      const outcomes = opts.wait ? await followOutcomes(kafka, env.KAFKA_TOPIC_PREFIX) : undefined;
      await publishRequest(kafka, env.KAFKA_TOPIC_PREFIX, event);
      show({
        step: 'requested',
        at: event.metadata.time,
        detail: {
          item_id: event.data.item_id,
          days_requested: event.data.days_requested ?? DEFAULT_DAYS_REQUESTED,
        },
      });
      if (!outcomes) return;
      try {
        const final = await outcomes.follow(
          event.metadata.id,
          event.data.item_id,
          timeoutS * 1000,
          show,
        );
        if (final === 'failed') outcome.exitCode = EXIT_REFRESH_FAILED;
        if (final === 'timed_out') {
          process.stderr.write(`no outcome within ${timeoutS} s; the request stays published\n`);
          outcome.exitCode = EXIT_TIMED_OUT;
        }
      } finally {
        await outcomes.stop();
      }
    });
}

/** The RefreshRequested the command line asks for, with a new event id. */
function refreshRequested(rawItemId: string, opts: RefreshOptions): RefreshRequested {
  const days = opts.days === undefined ? undefined : parseOption('--days', daysOption, opts.days);
  return createEvent(
    'RefreshRequested',
    {
      item_id: ItemId.parse(rawItemId),
      ...(days === undefined ? {} : { days_requested: days }),
      requested_by: opts.requestedBy,
    },
    { id: randomUUID(), source: CLI_SOURCE, time: new Date().toISOString() },
  );
}

async function publishRequest(kafka: Kafka, prefix: string, event: RefreshRequested) {
  const publisher = new EventPublisher(kafka, prefix);
  await publisher.connect();
  try {
    await publisher.publish(event);
  } finally {
    await publisher.disconnect();
  }
}

function addStatusCommand(program: Command): void {
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
      print(Boolean(opts.json), { ...state, refreshes }, () => statusText(state, refreshes));
    });
}

function statusText(state: Row, refreshes: Row[]): string {
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
}

function addListCommand(program: Command): void {
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
