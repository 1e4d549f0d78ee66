import { TokenCipher, TokenVault } from '@cashflow/access-tokens';
import {
  LOCAL_SANDBOX_CREDENTIALS,
  accessTokenVariables,
  commonVariables,
  databaseVariables,
  kafkaVariables,
  loadConfig,
} from '@cashflow/config';
import {
  FETCHER_SOURCE,
  INGRESS_SOURCE,
  TOPICS,
  TOPIC_KEYS,
  decodeEvent,
  topicName,
} from '@cashflow/contracts';
import { createDataSource, queryRows } from '@cashflow/persistence';
import {
  ITEM_COLUMNS,
  PROJECTED_TOPICS,
  PROJECTOR_CONSUMER,
  REPORT_COLUMNS,
  REQUEST_COLUMNS,
  type ItemRow,
  type ReportRow,
  type RequestRow,
  consumerCheckpoints,
} from '@cashflow/projection';
import { readHighWatermarks } from '@cashflow/kafka';
import type { Command } from 'commander';
import type { Kafka } from 'kafkajs';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource } from 'typeorm';
import { z } from 'zod';
import { cliLogger, kafkaFrom } from '../clients';
import { read } from '../log-reader';
import { outcome } from '../refresh-commands';
import { changelogAgainstStore, storedAgainstSandbox } from './report-checks';
import { checkFetchedReports, checkFetchedRequests } from './report-invariants';
import { checkItemHealth } from './health-invariants';
import { spanSearchables } from './span-files';
import {
  checkOutcomes,
  checkProjection,
  checkReports,
  checkSecrets,
  recordText,
  type Finding,
  type KnownSecret,
  type LogRecord,
  type ProjectionSnapshot,
  type PollAnswerRecord,
  type SandboxDelivery,
  type Searchable,
} from './invariants';

const SERVICE = 'cli';
/** `check` found a promise broken. */
export const EXIT_VIOLATED = 3;

/** Variables `check` reads; the secrets among them are what it searches for. */
const checkVariables = z.object({
  ...commonVariables,
  ...kafkaVariables,
  ...databaseVariables,
  TOKEN_ENCRYPTION_KEYS: accessTokenVariables.TOKEN_ENCRYPTION_KEYS.optional(),
  PLAID_ENV: z.string().optional(),
  PLAID_SECRET: z.string().min(1).optional(),
  ADMIN_API_TOKENS: z.string().optional(),
  PROJECTOR_API_TOKENS: z.string().optional(),
});
type CheckEnv = z.output<typeof checkVariables>;

/** Files of a path: the file itself, or every file under a directory. */
function filesUnder(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).flatMap((name) => filesUnder(join(path, name)));
}

/** Secrets whose values the environment holds; the tokens' values, never their names. */
function secretsFromEnv(env: CheckEnv): KnownSecret[] {
  const secrets: KnownSecret[] = [];
  if (env.PLAID_SECRET) secrets.push({ name: 'PLAID_SECRET', value: env.PLAID_SECRET });
  if ((env.PLAID_ENV ?? 'local') === 'local') {
    secrets.push({ name: 'the local sandbox secret', value: LOCAL_SANDBOX_CREDENTIALS.secret });
  }
  for (const [id, key] of env.TOKEN_ENCRYPTION_KEYS ?? new Map<string, Buffer>()) {
    secrets.push({ name: `token encryption key ${id}`, value: key.toString('base64') });
  }
  for (const variable of ['ADMIN_API_TOKENS', 'PROJECTOR_API_TOKENS'] as const) {
    for (const entry of (env[variable] ?? '').split(',').filter(Boolean)) {
      const name = entry.slice(0, entry.indexOf(':'));
      secrets.push({ name: `${variable} ${name}`, value: entry.slice(entry.indexOf(':') + 1) });
    }
  }
  return secrets;
}

/** The projection's tables and checkpoints as of one instant (a REPEATABLE READ snapshot). */
async function snapshotProjection(db: DataSource): Promise<ProjectionSnapshot> {
  const runner = db.createQueryRunner();
  await runner.connect();
  try {
    await runner.startTransaction('REPEATABLE READ');
    const m = runner.manager;
    const checkpoints = await consumerCheckpoints(m, PROJECTOR_CONSUMER);
    const items = await queryRows<ItemRow>(
      m,
      `SELECT ${ITEM_COLUMNS.join(', ')} FROM item_refresh_state`,
    );
    const requests = await queryRows<RequestRow>(
      m,
      `SELECT ${REQUEST_COLUMNS.join(', ')} FROM refresh_requests`,
    );
    const reports = await queryRows<ReportRow>(
      m,
      `SELECT ${REPORT_COLUMNS.join(', ')} FROM item_reports`,
    );
    const [count] = await queryRows<{ n: number }>(
      m,
      'SELECT count(*)::int AS n FROM projection_events',
    );
    await runner.commitTransaction();
    return {
      checkpoints: new Map([...checkpoints].map(([key, next]) => [key, String(next)])),
      items,
      requests,
      reports,
      eventCount: count?.n ?? 0,
    };
  } finally {
    await runner.release();
  }
}

/** The answers the report fetcher recorded for the polls that found a report, by poll id. */
async function recordedPolls(db: DataSource): Promise<Map<string, PollAnswerRecord>> {
  const rows = await queryRows<{
    poll_id: string;
    item_id: string;
    plaid_request_id: string;
    last_successful_update_time: Date;
  }>(
    db,
    `SELECT poll_id, item_id, plaid_request_id, last_successful_update_time
       FROM report_polls WHERE outcome = 'found'`,
  );
  return new Map(
    rows.map((r) => [
      r.poll_id,
      {
        itemId: r.item_id,
        plaidRequestId: r.plaid_request_id,
        lastSuccessfulUpdateTime: r.last_successful_update_time.toISOString(),
      },
    ]),
  );
}

/** The give-ups the report fetcher recorded (ReportOverdue), by event id. */
async function recordedOverdue(
  db: DataSource,
): Promise<Map<string, { itemId: string; requestIds: string[] }>> {
  const rows = await queryRows<{ poll_id: string; item_id: string; refresh_request_ids: string[] }>(
    db,
    `SELECT poll_id, item_id, refresh_request_ids FROM report_polls WHERE outcome = 'overdue'`,
  );
  return new Map(
    rows.map((r) => [r.poll_id, { itemId: r.item_id, requestIds: r.refresh_request_ids }]),
  );
}

/** The sandbox's /cashflow_report/get answers; refuses a log that has forgotten some. */
async function sandboxGetAnswers(url: string): Promise<Map<string, PollAnswerRecord>> {
  const response = await fetch(new URL('/sandbox/get_answers', url));
  if (!response.ok) {
    throw new Error(`the Plaid sandbox answered ${response.status} for its /get answer log`);
  }
  const body = (await response.json()) as {
    forgotten?: number;
    answers: { request_id: string; item_id: string; last_successful_update_time: string }[];
  };
  if (body.forgotten) {
    throw new Error(
      `the Plaid sandbox has forgotten ${body.forgotten} /cashflow_report/get answers (PLAID_SANDBOX_DELIVERY_LOG_LIMIT), so reports found by polling cannot be matched to them; run check without --sandbox`,
    );
  }
  return new Map(
    body.answers.map((a) => [
      a.request_id,
      {
        itemId: a.item_id,
        plaidRequestId: a.request_id,
        lastSuccessfulUpdateTime: a.last_successful_update_time,
      },
    ]),
  );
}

/** The sandbox's whole delivery log; refuses one that has forgotten deliveries. */
async function sandboxDeliveries(url: string): Promise<SandboxDelivery[]> {
  const response = await fetch(new URL('/sandbox/webhooks', url));
  if (!response.ok)
    throw new Error(`the Plaid sandbox answered ${response.status} for its webhook log`);
  const body = (await response.json()) as {
    forgotten?: number;
    deliveries: {
      delivery_id: string;
      item_id: string;
      webhook_code: string;
      attempts: { jwt_sha256: string | null; status: number | null }[];
    }[];
  };
  if (body.forgotten) {
    throw new Error(
      `the Plaid sandbox has forgotten ${body.forgotten} webhook deliveries (PLAID_SANDBOX_DELIVERY_LOG_LIMIT), so reports cannot be matched to them; run check without --sandbox`,
    );
  }
  return body.deliveries.map((d) => ({
    deliveryId: d.delivery_id,
    itemId: d.item_id,
    webhookCode: d.webhook_code,
    attempts: d.attempts
      .filter((a) => a.jwt_sha256 !== null)
      .map((a) => ({ jwtSha256: a.jwt_sha256!, status: a.status })),
  }));
}

function printFindings(findings: readonly Finding[]): void {
  const out: string[] = [];
  for (const f of findings) {
    out.push(`${f.holds ? 'ok  ' : 'FAIL'} ${f.name}`);
    out.push(
      `     ${Object.entries(f.counts)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')}`,
    );
    for (const e of f.examples) out.push(`     - ${e}`);
    for (const n of f.notes ?? []) out.push(`     (${n})`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

interface CheckOptions {
  readonly logs: readonly string[];
  /** OTLP/JSON trace files searched for secrets like the logs. */
  readonly spans: readonly string[];
  readonly sandbox?: string;
  readonly maxPendingMs: number;
  readonly settleMs: number;
  readonly json: boolean;
}

/** `cashflow-refresh check`: the invariant checker. */
export function addCheckCommand(program: Command): void {
  program
    .command('check')
    .description(
      'Check the running system against its promises, from what it wrote: every request has exactly one outcome, every report came from a verified webhook about a known Item, the projection equals a fresh fold of the log, and no secret appears in any topic, in the given logs or in the given spans. Exit 0 when all hold, 3 when one does not.',
    )
    .option('--logs <path...>', 'log files or directories to search for secrets too')
    .option(
      '--spans <path...>',
      'trace files (OTLP/JSON, as an OpenTelemetry collector file exporter writes them) or directories: no span may carry a secret',
    )
    .option(
      '--sandbox <url>',
      'the local Plaid sandbox: match every report to a webhook it sent, and every webhook it saw answered 200 to the log',
    )
    .option(
      '--max-pending <minutes>',
      'a request younger than this without an outcome is pending, not a violation',
      '60',
    )
    .option(
      '--settle <seconds>',
      'first wait up to this long for the projector to reach the end of the log',
      '30',
    )
    .option('--json', 'print the findings as JSON')
    .action(
      async (opts: {
        logs?: string[];
        spans?: string[];
        sandbox?: string;
        maxPending: string;
        settle: string;
        json?: boolean;
      }) => {
        const options: CheckOptions = {
          logs: opts.logs ?? [],
          spans: opts.spans ?? [],
          ...(opts.sandbox ? { sandbox: opts.sandbox } : {}),
          maxPendingMs: z.coerce.number().min(0).parse(opts.maxPending) * 60_000,
          settleMs: z.coerce.number().min(0).parse(opts.settle) * 1000,
          json: Boolean(opts.json),
        };
        const env = loadConfig(SERVICE, checkVariables);
        const kafka = kafkaFrom(env, cliLogger('error'));
        const db = await createDataSource({
          url: env.DATABASE_URL,
          applicationName: 'cashflow-cli-check',
          poolSize: 2,
        }).initialize();
        try {
          const { findings, records } = await checkPromises(env, kafka, db, options);
          const holds = printOutcome(findings, records, options.json);
          if (!holds) outcome.exitCode = EXIT_VIOLATED;
        } finally {
          await db.destroy();
        }
      },
    );
}

/** Reads what the system wrote and checks each promise against it. */
async function checkPromises(env: CheckEnv, kafka: Kafka, db: DataSource, options: CheckOptions) {
  const prefix = env.KAFKA_TOPIC_PREFIX;
  // The sandbox's deliveries first: every one it saw acknowledged is then on the log.
  const deliveriesBeforeLog = options.sandbox
    ? await sandboxDeliveries(options.sandbox)
    : undefined;
  const ends = await readHighWatermarks(
    kafka,
    TOPIC_KEYS.map((key) => topicName(key, prefix)),
  );
  await settle(db, ends, prefix, options.settleMs);
  const snapshot = await snapshotProjection(db);
  const records = await readLog(kafka, prefix, readTargets(ends, snapshot));

  const notes: string[] = [];
  const secrets = await knownSecrets(env, db, notes);
  const logFiles = options.logs.flatMap(filesUnder);
  if (logFiles.length === 0) notes.push('no --logs given: only the topics were searched');
  const spanFiles = options.spans.flatMap(filesUnder);
  const spans = spanFiles.flatMap((file) => spanSearchables(file, readFileSync(file, 'utf8')));
  if (spanFiles.length > 0) notes.push(`${spans.length} spans searched`);
  function* searchables(): Generator<Searchable> {
    for (const r of records) yield recordText(r);
    for (const file of logFiles) yield { where: file, text: readFileSync(file, 'utf8') };
    yield* spans;
  }
  const findings = [
    checkOutcomes(records, { now: Date.now(), maxPendingMs: options.maxPendingMs }),
    checkReports(records, {
      ingressSource: INGRESS_SOURCE,
      fetcherSource: FETCHER_SOURCE,
      recordedPolls: await recordedPolls(db),
      recordedOverdue: await recordedOverdue(db),
      knownItems: await knownItems(db, records),
      ...(options.sandbox && deliveriesBeforeLog
        ? {
            sandboxDeliveries: await sandboxDeliveries(options.sandbox),
            deliveriesBeforeLog,
            sandboxGetAnswers: await sandboxGetAnswers(options.sandbox),
          }
        : {}),
    }),
    checkProjection(records, snapshot),
    checkSecrets(searchables(), secrets, notes),
    checkFetchedReports(records, { now: Date.now(), maxPendingMs: options.maxPendingMs }),
    checkFetchedRequests(records),
    checkItemHealth(records),
    await changelogAgainstStore(kafka, db, prefix, records),
    ...(options.sandbox ? [await storedAgainstSandbox(db, options.sandbox)] : []),
  ];
  return { findings, records: records.length };
}

/** Waits up to `settleMs` for the projector to reach `ends` on every projected partition. */
async function settle(
  db: DataSource,
  ends: ReadonlyMap<string, bigint>,
  prefix: string,
  settleMs: number,
): Promise<void> {
  const projected = new Set(PROJECTED_TOPICS.map((k) => topicName(k, prefix)));
  const deadline = Date.now() + settleMs;
  for (;;) {
    const done = await consumerCheckpoints(db, PROJECTOR_CONSUMER);
    const behind = [...ends].some(
      ([key, end]) =>
        projected.has(key.slice(0, key.lastIndexOf(':'))) && (done.get(key) ?? 0n) < end,
    );
    if (!behind || Date.now() >= deadline) return;
    await sleep(250);
  }
}

/** Read to the end as it was, or further where the projector already is. */
function readTargets(ends: ReadonlyMap<string, bigint>, snapshot: ProjectionSnapshot) {
  const targets = new Map(ends);
  for (const [key, next] of snapshot.checkpoints) {
    if (BigInt(next) > (targets.get(key) ?? 0n)) targets.set(key, BigInt(next));
  }
  return targets;
}

/** Every record of every topic below `targets`, decoded where it can be. */
async function readLog(
  kafka: Kafka,
  prefix: string,
  targets: ReadonlyMap<string, bigint>,
): Promise<LogRecord[]> {
  // The changelog holds rows, not events, and can be large: its invariant reads it on its own.
  const keyOf = new Map(
    TOPIC_KEYS.filter((k) => TOPICS[k].records !== 'transactions-changelog').map((k) => [
      topicName(k, prefix),
      k,
    ]),
  );
  const records: LogRecord[] = [];
  await read(
    kafka,
    [...keyOf.keys()],
    { fromBeginning: true, toEnd: true, targets },
    ({ topic, partition, message }) => {
      if (BigInt(message.offset) >= (targets.get(`${topic}:${partition}`) ?? 0n)) return;
      const topicKey = keyOf.get(topic)!;
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(message.headers ?? {})) {
        const last = Array.isArray(value) ? value[value.length - 1] : value;
        if (last !== undefined) headers[name] = last.toString();
      }
      const decoded =
        TOPICS[topicKey].records === 'events'
          ? decodeEvent(message, TOPICS[topicKey].events)
          : null;
      records.push({
        topicKey,
        topic,
        partition,
        offset: message.offset,
        timestamp: Number(message.timestamp),
        key: message.key,
        value: message.value,
        headers,
        event: decoded?.ok ? decoded.value : null,
      });
    },
  );
  return records;
}

/** The secrets to search for: the environment's, and every registered access token. */
async function knownSecrets(env: CheckEnv, db: DataSource, notes: string[]) {
  const secrets = secretsFromEnv(env);
  if (!env.TOKEN_ENCRYPTION_KEYS) {
    notes.push(
      'TOKEN_ENCRYPTION_KEYS not set: registered tokens not searched for by value, only by shape',
    );
    return secrets;
  }
  const keyId = [...env.TOKEN_ENCRYPTION_KEYS.keys()][0]!;
  const vault = new TokenVault(db, new TokenCipher(env.TOKEN_ENCRYPTION_KEYS, keyId));
  for (const [itemId, value] of await vault.revealAll()) {
    secrets.push({ name: `the access token of ${itemId}`, value });
  }
  return secrets;
}

/** Items the system knows: those with a registered token or a request on the log. */
async function knownItems(db: DataSource, records: readonly LogRecord[]) {
  const registered = await queryRows<{ item_id: string }>(
    db,
    'SELECT item_id FROM item_access_tokens',
  ).catch(() => []);
  return new Set([
    ...registered.map((r) => r.item_id),
    ...records.flatMap((r) => (r.event?.type === 'RefreshRequested' ? [r.event.data.item_id] : [])),
  ]);
}

/** Prints the findings (text or JSON); true when every promise holds. */
function printOutcome(findings: readonly Finding[], records: number, json: boolean): boolean {
  const holds = findings.every((f) => f.holds);
  if (json) {
    process.stdout.write(`${JSON.stringify({ holds, records, findings })}\n`);
  } else {
    printFindings(findings);
    process.stdout.write(`${holds ? 'all hold' : 'VIOLATED'} (${records} records read)\n`);
  }
  return holds;
}
