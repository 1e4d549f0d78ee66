/**
 * The system's promises, checked against what it actually wrote: the event log (every topic)
 * and the projection. Pure functions over records already read, so each rule is tested without
 * a broker; `check-command.ts` does the reading.
 *
 * 1. Every RefreshRequested has exactly one outcome (RefreshAccepted or RefreshFailed, counted by
 *    distinct event id, coalesced requests included) and no outcome lacks its request.
 * 2. Every report (ReportReady, ReportFailed, PlaidWebhookReceived) came from a verified webhook
 *    delivery and is about a known Item; with the local Plaid sandbox's delivery log, also that
 *    every webhook the sandbox saw acknowledged is on the topic.
 * 3. The projection equals a fresh fold of the log up to the projector's checkpoints.
 * 4. No access token, client secret or private key appears in any topic or captured log.
 */
import {
  DLQ_HEADERS,
  type CashflowEvent,
  type EventOfType,
  type TopicKey,
} from '@cashflow/contracts';
import {
  foldEvents,
  itemToRow,
  reportToRow,
  requestToRow,
  rowToItem,
  rowToReport,
  rowToRequest,
  type ItemProjection,
  type ItemRow,
  type ReportRow,
  type RequestRow,
} from '@cashflow/projection';

/** One Kafka record as read, decoded when it could be. */
export interface LogRecord {
  readonly topicKey: TopicKey;
  /** The topic's full name (with the deployment's prefix). */
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** Kafka timestamp, milliseconds. */
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly event: CashflowEvent | null;
}

export interface Finding {
  readonly name: string;
  readonly holds: boolean;
  /** What was looked at and absorbed, e.g. requests, duplicates absorbed, violations. */
  readonly counts: Readonly<Record<string, number>>;
  /** A few violations, each one line; never a secret. */
  readonly examples: readonly string[];
  /** Checks left out, and why (e.g. no token key configured). */
  readonly notes?: readonly string[];
}

const MAX_EXAMPLES = 5;

class Examples {
  readonly lines: string[] = [];
  count = 0;
  add(line: string): void {
    this.count += 1;
    if (this.lines.length < MAX_EXAMPLES) this.lines.push(line);
  }
}

const where = (r: LogRecord) => `${r.topic} ${r.partition}:${r.offset}`;

type Outcome = EventOfType<'RefreshAccepted'> | EventOfType<'RefreshFailed'>;

// ------------------------------------------------------------------ 1. one outcome per request

export interface OutcomeOptions {
  /** Now, milliseconds. */
  readonly now: number;
  /** A request without an outcome younger than this is pending, not a violation. */
  readonly maxPendingMs: number;
}

export function checkOutcomes(records: readonly LogRecord[], options: OutcomeOptions): Finding {
  const requests = new Map<string, { itemId: string; source: string; at: number; where: string }>();
  // Requests the worker refused because another request had their id first: they get no outcome.
  const refused = new Set(
    records
      .filter(
        (r) =>
          r.topicKey === 'deadLetter' && r.headers[DLQ_HEADERS.errorCode] === 'REQUEST_ID_CONFLICT',
      )
      .map(
        (r) =>
          `${r.headers[DLQ_HEADERS.sourceTopic]} ${r.headers[DLQ_HEADERS.sourcePartition]}:${r.headers[DLQ_HEADERS.sourceOffset]}`,
      ),
  );
  const reused = new Examples();
  let refusedCount = 0;
  let requestCopies = 0;
  const outcomes = new Map<string, Map<string, Outcome>>();
  const outcomeIds = new Set<string>();
  let outcomeCopies = 0;
  let coalesced = 0;
  let accepted = 0;
  let failed = 0;
  for (const r of records) {
    const event = r.event;
    if (!event) continue;
    if (event.type === 'RefreshRequested') {
      if (refused.has(where(r))) {
        refusedCount += 1;
        continue;
      }
      const first = requests.get(event.metadata.id);
      if (!first) {
        requests.set(event.metadata.id, {
          itemId: event.data.item_id,
          source: event.metadata.source,
          at: r.timestamp,
          where: where(r),
        });
      } else if (first.itemId === event.data.item_id && first.source === event.metadata.source) {
        requestCopies += 1;
      } else {
        // Not a copy: another request under the same id, and nothing refused it.
        reused.add(
          `request id ${event.metadata.id} is used by ${first.source} for ${first.itemId} (${first.where}) and by ${event.metadata.source} for ${event.data.item_id} (${where(r)}), and neither was refused`,
        );
      }
    } else if (event.type === 'RefreshAccepted' || event.type === 'RefreshFailed') {
      if (outcomeIds.has(event.metadata.id)) {
        outcomeCopies += 1;
        continue;
      }
      outcomeIds.add(event.metadata.id);
      if (event.type === 'RefreshAccepted') accepted += 1;
      else failed += 1;
      if (event.data.coalesced_into) coalesced += 1;
      const byId = outcomes.get(event.data.refresh_request_id) ?? new Map<string, Outcome>();
      byId.set(event.metadata.id, event);
      outcomes.set(event.data.refresh_request_id, byId);
    }
  }

  const twice = new Examples();
  const orphans = new Examples();
  const unanswered = new Examples();
  const wrongItem = new Examples();
  let pending = 0;
  for (const [id, request] of requests) {
    const answers = outcomes.get(id);
    if (!answers) {
      if (options.now - request.at < options.maxPendingMs) pending += 1;
      else unanswered.add(`request ${id} (${request.itemId}, ${request.where}) has no outcome`);
      continue;
    }
    if (answers.size > 1) {
      twice.add(`request ${id} has ${answers.size} outcomes: ${[...answers.keys()].join(', ')}`);
    }
    for (const outcome of answers.values()) {
      if (outcome.data.item_id !== request.itemId) {
        wrongItem.add(
          `outcome ${outcome.metadata.id} is for ${outcome.data.item_id}, its request for ${request.itemId}`,
        );
      }
    }
  }
  for (const [id, answers] of outcomes) {
    if (!requests.has(id)) {
      orphans.add(`outcome ${[...answers.keys()][0]} answers request ${id}, not on the log`);
    }
  }
  const violations =
    twice.count + orphans.count + unanswered.count + wrongItem.count + reused.count;
  return {
    name: 'every request has exactly one outcome',
    holds: violations === 0,
    counts: {
      requests: requests.size,
      outcomes: outcomeIds.size,
      accepted,
      failed,
      coalesced,
      pending,
      'duplicates absorbed': requestCopies + outcomeCopies,
      'answered twice': twice.count,
      'without outcome': unanswered.count,
      'outcome without request': orphans.count,
      'outcome for another item': wrongItem.count,
      'refused: id used first by another request': refusedCount,
      'id reused, not refused': reused.count,
      violations,
    },
    examples: [
      ...twice.lines,
      ...unanswered.lines,
      ...orphans.lines,
      ...wrongItem.lines,
      ...reused.lines,
    ].slice(0, MAX_EXAMPLES),
  };
}

// ------------------------------------------------------------ 2. reports from verified webhooks

/** One webhook delivery as the local Plaid sandbox logged it. */
export interface SandboxDelivery {
  readonly deliveryId: string;
  readonly itemId: string;
  readonly webhookCode: string;
  /** SHA-256 (hex) of each attempt's Plaid-Verification JWT, with the status it got. */
  readonly attempts: readonly { readonly jwtSha256: string; readonly status: number | null }[];
}

/** A poll's answer as the report fetcher recorded it (report_polls), or as the sandbox served it. */
export interface PollAnswerRecord {
  readonly itemId: string;
  readonly plaidRequestId: string;
  readonly lastSuccessfulUpdateTime: string;
}

export interface ReportOptions {
  /** The ce_source the webhook ingress publishes with. */
  readonly ingressSource: string;
  /** The ce_source the report fetcher publishes reports found by polling with. */
  readonly fetcherSource: string;
  /** The fetcher's recorded poll answers that found a report, by poll id (report_polls). */
  readonly recordedPolls: ReadonlyMap<string, PollAnswerRecord>;
  /** The sandbox's /cashflow_report/get answers, by Plaid request id. */
  readonly sandboxGetAnswers?: ReadonlyMap<string, PollAnswerRecord>;
  /** The fetcher's recorded give-ups (report_polls, outcome overdue): Item and requests by id. */
  readonly recordedOverdue?: ReadonlyMap<string, { itemId: string; requestIds: string[] }>;
  /** Items the system knows: registered tokens and Items on the requested topic. */
  readonly knownItems: ReadonlySet<string>;
  /** The sandbox's delivery log, read after the log: every report must match one of these. */
  readonly sandboxDeliveries?: readonly SandboxDelivery[];
  /**
   * The sandbox's delivery log as it was before the log's end was taken: each of these answered
   * 200 must be on the log. (A webhook acknowledged after that moment is not lost, just later;
   * default `sandboxDeliveries`.)
   */
  readonly deliveriesBeforeLog?: readonly SandboxDelivery[];
}

type Report =
  EventOfType<'ReportReady'> | EventOfType<'ReportFailed'> | EventOfType<'PlaidWebhookReceived'>;

const isReport = (event: CashflowEvent): event is Report =>
  event.type === 'ReportReady' ||
  event.type === 'ReportFailed' ||
  event.type === 'PlaidWebhookReceived';

export function checkReports(records: readonly LogRecord[], options: ReportOptions): Finding {
  const seen = new Set<string>();
  const deliveryIdsOnLog = new Set<string>();
  let copies = 0;
  let polled = 0;
  const unverified = new Examples();
  const unbacked = new Examples();
  const unknownItem = new Examples();
  const notFromPlaid = new Examples();
  const lost = new Examples();
  const attempts = new Map<string, SandboxDelivery>();
  for (const delivery of options.sandboxDeliveries ?? []) {
    for (const a of delivery.attempts) attempts.set(a.jwtSha256, delivery);
  }
  const accepted = new Map<string, string>();
  for (const r of records) {
    if (r.event?.type === 'RefreshAccepted') {
      accepted.set(r.event.data.refresh_request_id, r.event.data.item_id);
    }
  }
  const overdueSeen = new Set<string>();
  for (const r of records) {
    const event = r.event;
    if (event?.type === 'ReportOverdue') {
      if (overdueSeen.has(event.metadata.id)) {
        copies += 1;
        continue;
      }
      overdueSeen.add(event.metadata.id);
      checkOverdue(event, r, options, accepted, unbacked);
      continue;
    }
    if (!event || !isReport(event)) continue;
    if (seen.has(event.metadata.id)) {
      copies += 1;
      continue;
    }
    seen.add(event.metadata.id);
    if (event.type === 'ReportReady' && event.data.found_by === 'polling') {
      polled += 1;
      checkPolled(event, r, options, { unverified, unknownItem, unbacked, notFromPlaid });
      continue;
    }
    const { data } = event;
    deliveryIdsOnLog.add(data.delivery_id);
    const bodyItem = (data.webhook as { item_id?: unknown }).item_id;
    if (
      event.metadata.source !== options.ingressSource ||
      !/^[0-9a-f]{64}$/.test(data.delivery_id) ||
      bodyItem !== data.item_id
    ) {
      unverified.add(
        `${event.type} ${event.metadata.id} (${where(r)}) does not carry a verified delivery from the ingress`,
      );
    }
    if (!options.knownItems.has(data.item_id)) {
      unknownItem.add(`${event.type} ${event.metadata.id} is about unknown item ${data.item_id}`);
    }
    if (options.sandboxDeliveries) {
      const delivery = attempts.get(data.delivery_id);
      if (!delivery || delivery.itemId !== data.item_id) {
        notFromPlaid.add(
          `${event.type} ${event.metadata.id} (${data.item_id}): no webhook the sandbox sent has its delivery id`,
        );
      }
    }
  }
  let acknowledged = 0;
  for (const delivery of options.deliveriesBeforeLog ?? options.sandboxDeliveries ?? []) {
    if (!delivery.attempts.some((a) => a.status === 200)) continue;
    acknowledged += 1;
    if (!delivery.attempts.some((a) => deliveryIdsOnLog.has(a.jwtSha256))) {
      lost.add(
        `webhook ${delivery.deliveryId} (${delivery.itemId}, ${delivery.webhookCode}) was answered 200 but is not on the log`,
      );
    }
  }
  const violations =
    unverified.count + unknownItem.count + notFromPlaid.count + lost.count + unbacked.count;
  return {
    name: 'every report came from a verified webhook, or a recorded poll of Plaid, about a known item',
    holds: violations === 0,
    counts: {
      reports: seen.size,
      'found by polling': polled,
      'given up (ReportOverdue)': overdueSeen.size,
      'duplicates absorbed': copies,
      ...(options.sandboxDeliveries
        ? { 'sandbox deliveries acknowledged': acknowledged, 'acknowledged but lost': lost.count }
        : {}),
      'not from the ingress': unverified.count,
      'polls not recorded': unbacked.count,
      'unknown item': unknownItem.count,
      ...(options.sandboxDeliveries ? { 'not sent by the sandbox': notFromPlaid.count } : {}),
      violations,
    },
    examples: [
      ...lost.lines,
      ...unverified.lines,
      ...unbacked.lines,
      ...notFromPlaid.lines,
      ...unknownItem.lines,
    ].slice(0, MAX_EXAMPLES),
    notes: options.sandboxDeliveries
      ? []
      : ['no Plaid sandbox delivery log given: reports checked by source and delivery id only'],
  };
}

/**
 * A ReportReady the report fetcher found by polling: published by the fetcher, its delivery id
 * and event id named after its poll, received when the data it saw was ready, backed by the
 * answer the fetcher recorded (report_polls), and with the sandbox, by an answer it served.
 */
function checkPolled(
  event: EventOfType<'ReportReady'>,
  r: LogRecord,
  options: ReportOptions,
  out: { unverified: Examples; unknownItem: Examples; unbacked: Examples; notFromPlaid: Examples },
): void {
  const { data } = event;
  const poll = data.poll;
  const at = (iso: string) => Date.parse(iso);
  if (
    event.metadata.source !== options.fetcherSource ||
    !poll ||
    data.delivery_id !== `poll:${poll.poll_id}` ||
    event.metadata.id !== poll.poll_id ||
    at(data.received_at) !== at(poll.last_successful_update_time)
  ) {
    out.unverified.add(
      `ReportReady ${event.metadata.id} (${where(r)}) says it was found by polling but is not a poll of the report fetcher`,
    );
    return;
  }
  if (!options.knownItems.has(data.item_id)) {
    out.unknownItem.add(`ReportReady ${event.metadata.id} is about unknown item ${data.item_id}`);
  }
  const matches = (answer: PollAnswerRecord | undefined) =>
    answer !== undefined &&
    answer.itemId === data.item_id &&
    answer.plaidRequestId === poll.plaid_request_id &&
    at(answer.lastSuccessfulUpdateTime) === at(poll.last_successful_update_time);
  if (!matches(options.recordedPolls.get(poll.poll_id))) {
    out.unbacked.add(
      `ReportReady ${event.metadata.id} (${data.item_id}) found by polling: no poll the report fetcher recorded gave that answer`,
    );
  }
  if (options.sandboxGetAnswers && !matches(options.sandboxGetAnswers.get(poll.plaid_request_id))) {
    out.notFromPlaid.add(
      `ReportReady ${event.metadata.id} (${data.item_id}) found by polling: the sandbox served no answer ${poll.plaid_request_id} with that data`,
    );
  }
}

/**
 * A ReportOverdue: published by the report fetcher, backed by the give-up it recorded (same Item
 * and requests), about requests accepted for that Item.
 */
function checkOverdue(
  event: EventOfType<'ReportOverdue'>,
  r: LogRecord,
  options: ReportOptions,
  accepted: ReadonlyMap<string, string>,
  unbacked: Examples,
): void {
  const { data } = event;
  const recorded = options.recordedOverdue?.get(event.metadata.id);
  const sameRequests =
    recorded !== undefined &&
    recorded.itemId === data.item_id &&
    [...recorded.requestIds].sort().join() === [...data.refresh_request_ids].sort().join();
  const allAccepted = data.refresh_request_ids.every((id) => accepted.get(id) === data.item_id);
  if (event.metadata.source !== options.fetcherSource || !sameRequests || !allAccepted) {
    unbacked.add(
      `ReportOverdue ${event.metadata.id} (${where(r)}, ${data.item_id}) is not a give-up the report fetcher recorded about requests accepted for that item`,
    );
  }
}

// ------------------------------------------------------------------ 3. projection = fold of log

/** The projection as read in one snapshot, with the projector's checkpoints. */
export interface ProjectionSnapshot {
  /** `topic:partition` -> next offset to read. */
  readonly checkpoints: ReadonlyMap<string, string>;
  readonly items: readonly ItemRow[];
  readonly requests: readonly RequestRow[];
  readonly reports: readonly ReportRow[];
  readonly eventCount: number;
}

/** Columns that record which event was applied last: they depend on the order topics interleave. */
const ORDER_DEPENDENT = new Set([
  'last_event_id',
  'last_event_topic',
  'last_event_partition',
  'last_event_offset',
]);

function comparable(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).filter(([c]) => !ORDER_DEPENDENT.has(c)));
}

/** Rows as the store writes them, in the shape they are read back (timestamps normalised). */
const normalItem = (row: ItemRow) => comparable(itemToRow(rowToItem(row)));
const normalRequest = (row: RequestRow) => comparable(requestToRow(rowToRequest(row)));
const normalReport = (row: ReportRow) => reportToRow(rowToReport(row));
const reportKey = (row: ReportRow) => `${String(row.item_id)} ${String(row.event_id)}`;
const receivedTime = (row: ReportRow) => new Date(row.received_at as string | Date).getTime();

/** Folds the records the projector should have applied (those below its checkpoints). */
export function foldLog(
  records: readonly LogRecord[],
  checkpoints: ReadonlyMap<string, string>,
): { items: Map<string, ItemProjection>; events: Set<string>; copies: number } {
  const applied = records
    .filter((r) => r.event && r.topicKey !== 'deadLetter')
    .filter((r) => BigInt(r.offset) < BigInt(checkpoints.get(`${r.topic}:${r.partition}`) ?? '0'))
    .sort((a, b) => a.timestamp - b.timestamp);
  const items = foldEvents(
    applied.map((r) => ({
      event: r.event!,
      position: { topic: r.topic, partition: r.partition, offset: r.offset },
    })),
  );
  const events = new Set(applied.map((r) => r.event!.metadata.id));
  return { items, events, copies: applied.length };
}

export function checkProjection(
  records: readonly LogRecord[],
  snapshot: ProjectionSnapshot,
): Finding {
  const fold = foldLog(records, snapshot.checkpoints);
  const mismatches = new Examples();
  const compare = (what: string, expected: unknown, actual: unknown) => {
    if (expected === undefined) return mismatches.add(`${what}: in the projection, not in the log`);
    if (actual === undefined)
      return mismatches.add(`${what}: in the log, missing from the projection`);
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const differ = Object.keys(e).filter((c) => JSON.stringify(e[c]) !== JSON.stringify(a[c]));
    if (differ.length > 0) {
      mismatches.add(
        `${what}: ${differ
          .slice(0, 3)
          .map((c) => `${c} is ${JSON.stringify(a[c])}, the log gives ${JSON.stringify(e[c])}`)
          .join('; ')}`,
      );
    }
  };

  const expectedItems = new Map<string, unknown>();
  const expectedRequests = new Map<string, unknown>();
  const expectedReports = new Map<string, unknown>();
  for (const [id, slice] of fold.items) {
    expectedItems.set(id, normalItem(itemToRow(slice.item)));
    for (const request of slice.requests.values()) {
      expectedRequests.set(`${id} ${request.requestId}`, normalRequest(requestToRow(request)));
    }
    for (const report of slice.reports.values()) {
      const row = reportToRow(report);
      expectedReports.set(reportKey(row), normalReport(row));
    }
  }
  const actualItems = new Map(
    snapshot.items.map((row) => [row.item_id as string, normalItem(row)]),
  );
  const actualRequests = new Map(
    snapshot.requests.map((row) => [
      `${row.item_id as string} ${row.request_id as string}`,
      normalRequest(row),
    ]),
  );
  for (const id of new Set([...expectedItems.keys(), ...actualItems.keys()])) {
    compare(`item ${id}`, expectedItems.get(id), actualItems.get(id));
  }
  for (const id of new Set([...expectedRequests.keys(), ...actualRequests.keys()])) {
    compare(`request ${id}`, expectedRequests.get(id), actualRequests.get(id));
  }
  // item_reports keeps a row per copy of a report; copies of one id differ only when one webhook
  // delivery reached two ingress replicas, and the earliest-received copy is the report.
  const actualReports = new Map<string, unknown>();
  for (const row of [...snapshot.reports].sort((a, b) => receivedTime(a) - receivedTime(b))) {
    if (!actualReports.has(reportKey(row))) actualReports.set(reportKey(row), normalReport(row));
  }
  for (const key of new Set([...expectedReports.keys(), ...actualReports.keys()])) {
    compare(`report ${key}`, expectedReports.get(key), actualReports.get(key));
  }
  // projection_events keeps every copy it consumed (one row per position), so copies, not ids.
  if (fold.copies !== snapshot.eventCount) {
    mismatches.add(
      `projection_events holds ${snapshot.eventCount} records, the log below the checkpoints ${fold.copies}`,
    );
  }
  return {
    name: 'the projection equals a fresh fold of the log',
    holds: mismatches.count === 0,
    counts: {
      items: expectedItems.size,
      requests: expectedRequests.size,
      reports: expectedReports.size,
      events: fold.events.size,
      mismatches: mismatches.count,
    },
    examples: mismatches.lines,
  };
}

// ---------------------------------------------------------------------------------- 4. secrets

/** A secret to look for, by name; its value is never reported. */
export interface KnownSecret {
  readonly name: string;
  readonly value: string;
}

/** Shapes of secrets whatever their value: Plaid access tokens, PEM and JWK private keys. */
export const SECRET_PATTERNS: readonly { readonly name: string; readonly pattern: RegExp }[] = [
  { name: 'a Plaid access token', pattern: /access-(sandbox|development|production)-[0-9a-f]{8}-/ },
  { name: 'a PEM private key', pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----/ },
  { name: 'a JWK private key', pattern: /"d"\s*:\s*"[A-Za-z0-9_-]{32,}"/ },
];

/** Something to search: a topic record's bytes or a log file. */
export interface Searchable {
  readonly where: string;
  readonly text: string;
}

export function checkSecrets(
  sources: Iterable<Searchable>,
  secrets: readonly KnownSecret[],
  notes: readonly string[] = [],
): Finding {
  const leaks = new Examples();
  let searched = 0;
  // Short values would match by chance; every secret we hold is longer.
  const known = secrets.filter((s) => s.value.length >= 12);
  for (const source of sources) {
    searched += 1;
    for (const secret of known) {
      if (source.text.includes(secret.value)) leaks.add(`${source.where} contains ${secret.name}`);
    }
    for (const { name, pattern } of SECRET_PATTERNS) {
      if (pattern.test(source.text)) leaks.add(`${source.where} contains ${name}`);
    }
  }
  return {
    name: 'no secret in any topic, log or span',
    holds: leaks.count === 0,
    counts: {
      searched,
      'secrets looked for': known.length + SECRET_PATTERNS.length,
      leaks: leaks.count,
    },
    examples: leaks.lines,
    notes,
  };
}

/** A record's key, value and headers as one text to search. */
export function recordText(r: LogRecord): Searchable {
  const parts = [r.key?.toString() ?? '', r.value?.toString() ?? ''];
  for (const [name, value] of Object.entries(r.headers)) parts.push(`${name}=${value}`);
  return { where: where(r), text: parts.join('\n') };
}
