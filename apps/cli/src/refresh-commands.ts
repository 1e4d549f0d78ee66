import { commonVariables, kafkaVariables, loadConfig } from '@cashflow/config';
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
import { parseOption } from './options';
import { print, textTable } from './output';
import { UNTIL, defaultUntil, followOutcomes, type Progress } from './refresh-progress';
import { projectorApi } from './service-apis';

const SERVICE = 'cli';

/**
 * Exit status of `refresh --wait` when the refresh or its fetch failed (0 is ready or fetched,
 * 1 any other error).
 */
export const EXIT_REFRESH_FAILED = 3;
/** Exit status of `refresh --wait` when nothing final arrived in time. */
export const EXIT_TIMED_OUT = 4;

/** Set by an action to choose the process's exit status. */
export const outcome = { exitCode: 0 };

type Row = Record<string, unknown>;

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
  readonly until?: string;
  readonly timeout: string;
  readonly requestedBy: string;
  readonly force?: boolean;
  readonly json?: boolean;
}

function addRefreshCommand(program: Command): void {
  program
    .command('refresh <item_id>')
    .description(
      'Publish a RefreshRequested for the Item (KAFKA_*). With --wait, show its progress until the outcome and, once accepted, the report and, when the report fetcher runs, its fetch.',
    )
    .option('--days <n>', `days of history, 1 to 730 (default ${DEFAULT_DAYS_REQUESTED})`)
    .option('--wait', 'wait for the outcome, the report and its fetch')
    .option(
      '--until <step>',
      'with --wait: end at ready (the report) or fetched (its data stored); default fetched when a report fetcher runs (its consumer group has members), else ready',
    )
    .option('--timeout <seconds>', 'with --wait: give up after this long', '600')
    .option('--requested-by <name>', 'who is asking, for ops', 'cashflow-refresh cli')
    .option(
      '--force',
      'call Plaid even if the Item needs its user (needs_user_action, revoked); otherwise such a request fails at once without a Plaid call',
    )
    .option('--json', 'print JSON lines')
    .action(async (rawItemId: string, opts: RefreshOptions) => {
      const event = refreshRequested(rawItemId, opts);
      const timeoutS = parseOption('--timeout', z.coerce.number().positive(), opts.timeout);
      const chosenUntil =
        opts.until === undefined ? undefined : parseOption('--until', z.enum(UNTIL), opts.until);
      if (chosenUntil && !opts.wait) throw new Error('--until: only with --wait');
      const env = loadConfig(SERVICE, z.object({ ...commonVariables, ...kafkaVariables }));
      const kafka = kafkaFrom(env, cliLogger('error'));
      const prefix = env.KAFKA_TOPIC_PREFIX;
      const show = (p: Progress) =>
        print(Boolean(opts.json), { request_id: event.metadata.id, ...p }, () =>
          [
            `${p.at}  ${p.step.padEnd(12)}`,
            ...Object.entries(p.detail).map(([k, v]) => `${k}=${String(v)}`),
          ].join(' '),
        );

      const until = opts.wait ? (chosenUntil ?? (await defaultUntil(kafka, prefix))) : undefined;
      const outcomes = until ? await followOutcomes(kafka, prefix) : undefined;
      await publishRequest(kafka, prefix, event);
      show({
        step: 'requested',
        at: event.metadata.time,
        detail: {
          item_id: event.data.item_id,
          days_requested: event.data.days_requested ?? DEFAULT_DAYS_REQUESTED,
          ...(event.data.force ? { force: true } : {}),
          ...(until ? { until } : {}),
        },
      });
      if (!outcomes || !until) return;
      try {
        const final = await outcomes.follow(
          { requestId: event.metadata.id, itemId: event.data.item_id, until },
          timeoutS * 1000,
          show,
        );
        if (final === 'failed') outcome.exitCode = EXIT_REFRESH_FAILED;
        if (final === 'timed_out') {
          process.stderr.write(`not ${until} within ${timeoutS} s; the request stays published\n`);
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
      ...(opts.force ? { force: true } : {}),
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
    `${String(state.item_id)}: ${typeof state.status === 'string' ? state.status : 'never refreshed'}${state.stuck ? ' (stuck)' : ''}`,
    `  health ${healthText(state.health as Row)}`,
    `  latest request ${String(state.latest_request_id)}, ${String(state.days_requested)} days, ${String(state.refreshes)} refreshes ready`,
    `  requested ${String(state.requested_at)}  accepted ${String(state.accepted_at)}  ready ${String(state.ready_at)}  failed ${String(state.failed_at)}`,
  ];
  if (error) {
    lines.push(
      `  last error ${String(error.code)} (${String(error.source)}) at ${String(error.at)}: ${String(error.message)}`,
    );
  }
  const fetchedAt = state.fetched_at as string | null;
  if (fetchedAt) {
    lines.push(
      `  report fetched ${fetchedAt}: data as of ${String(state.last_successful_update_time)}, ${String(state.transaction_count)} transactions`,
    );
  }
  const fetchFailure = state.last_fetch_failure as Row | null;
  if (fetchFailure) {
    lines.push(
      `  last fetch failure ${String(fetchFailure.code)} at ${String(fetchFailure.at)}: ${String(fetchFailure.message)}`,
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
      'seconds_to_fetched',
    ]),
  );
  return lines.join('\n');
}

/** `healthy`, or the health with its reason or date and since when. */
function healthText(health: Row): string {
  if (health.status === 'healthy') {
    return typeof health.changed_at === 'string'
      ? `healthy (since ${health.changed_at})`
      : 'healthy';
  }
  const why =
    health.status === 'consent_expiring'
      ? `consent expires ${String(health.consent_expires_at)}`
      : String(health.reason);
  const refused =
    health.status === 'consent_expiring' ? '' : '; refreshes are refused unless forced (--force)';
  return `${String(health.status)}: ${why}, since ${String(health.changed_at)}${refused}`;
}

function addListCommand(program: Command): void {
  program
    .command('list')
    .description(
      'Items by status, last error code, stuck or health (PROJECTOR_URL, PROJECTOR_API_TOKEN).',
    )
    .option('--status <status>', 'requested, refreshing, ready, failed or overdue')
    .option('--error-code <code>', 'Items whose last error has this code')
    .option('--stuck', 'only Items accepted long ago with no webhook since')
    .option(
      '--needs-attention',
      'only Items whose health is not healthy (needs_user_action, revoked, consent_expiring)',
    )
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(
      async (opts: {
        status?: string;
        errorCode?: string;
        stuck?: boolean;
        needsAttention?: boolean;
        limit: string;
        json?: boolean;
      }) => {
        const query = new URLSearchParams({ limit: opts.limit });
        if (opts.status) query.set('status', opts.status);
        if (opts.errorCode) query.set('error_code', opts.errorCode);
        if (opts.stuck) query.set('stuck', 'true');
        if (opts.needsAttention) query.set('needs_attention', 'true');
        const page = (await projectorApi(`/items?${query.toString()}`)) as { items: Row[] };
        const rows = page.items.map((i) => ({
          ...i,
          last_error_code: (i.last_error as Row | null)?.code ?? null,
          health: (i.health as Row).status,
          health_reason: (i.health as Row).reason ?? (i.health as Row).consent_expires_at ?? null,
        }));
        print(Boolean(opts.json), page, () =>
          textTable(rows, [
            'item_id',
            'status',
            'stuck',
            'accepted_at',
            'ready_at',
            'last_error_code',
            'health',
            'health_reason',
          ]),
        );
      },
    );
}
