import { decodeEvent, topicName, type CashflowEvent, type EventOfType } from '@cashflow/contracts';
import { readHighWatermarks } from '@cashflow/kafka';
import { answeringReport } from '@cashflow/projection';
import type { Kafka } from 'kafkajs';
import { randomUUID } from 'node:crypto';

/** What `refresh --wait` saw happen to the request. */
export interface Progress {
  readonly step:
    'requested' | 'accepted' | 'ready' | 'fetched' | 'failed' | 'fetch_failed' | 'overdue';
  readonly at: string;
  readonly detail: Record<string, unknown>;
}

/**
 * Where `refresh --wait` ends: at the report (`ready`), or once the report fetcher has stored
 * the request's data (`fetched`).
 */
export type Until = 'ready' | 'fetched';
export const UNTIL: readonly Until[] = ['ready', 'fetched'];

export type Final = 'ready' | 'fetched' | 'failed';

type Report = EventOfType<'ReportReady'> | EventOfType<'ReportFailed'>;

type Outcome = EventOfType<'RefreshAccepted'> | EventOfType<'RefreshFailed'>;

type Fetch = EventOfType<'ReportFetched'> | EventOfType<'ReportFetchFailed'>;

/**
 * Where a request stands, from the outcome, report and fetch events seen so far: its outcome,
 * once accepted the report that answers it by the projection's rule (the earliest report of the
 * Item received after the acceptance, with the rule's clock tolerance; a ReportReady found by
 * polling too) or, failing one, a ReportOverdue naming it (final: failed), and with `until`
 * `fetched`, once ready the fetch naming it (ReportFetched, or ReportFetchFailed), whichever
 * order they came in.
 */
export function progressOf(
  seen: readonly CashflowEvent[],
  requestId: string,
  itemId: string,
  until: Until = 'ready',
): { readonly steps: Progress[]; readonly final?: Final } {
  const outcome = seen.find(
    (e): e is Outcome =>
      (e.type === 'RefreshAccepted' || e.type === 'RefreshFailed') &&
      e.data.refresh_request_id === requestId,
  );
  if (!outcome) return { steps: [] };
  if (outcome.type === 'RefreshFailed') {
    const { data } = outcome;
    const detail = {
      error_code: data.error.error_code,
      retryable: data.retryable,
      message: data.error.error_message,
      // Refused without a Plaid call: the Item needs its user.
      ...(data.item_health ? { health: data.item_health.status } : {}),
    };
    return { steps: [{ step: 'failed', at: data.failed_at, detail }], final: 'failed' };
  }
  const { data } = outcome;
  const accepted: Progress = {
    step: 'accepted',
    at: data.accepted_at,
    detail: {
      plaid_request_id: data.plaid_request_id,
      attempts: data.attempts,
      ...(data.coalesced_into ? { coalesced_into: data.coalesced_into } : {}),
    },
  };
  const report = reportAnswering(seen, itemId, data.accepted_at);
  if (!report) {
    const overdue = overdueNaming(seen, requestId);
    if (!overdue) return { steps: [accepted] };
    const step: Progress = {
      step: 'overdue',
      at: overdue.data.overdue_at,
      detail: {
        polls: overdue.data.polls,
        last_successful_update_time: overdue.data.last_successful_update_time,
        ...(overdue.data.last_error ? { error_code: overdue.data.last_error.error_code } : {}),
      },
    };
    return { steps: [accepted, step], final: 'failed' };
  }
  const at = report.data.received_at;
  if (report.type === 'ReportReady') {
    const ready: Progress = {
      step: 'ready',
      at,
      detail: {
        report_event_id: report.metadata.id,
        ...(report.data.found_by === 'polling' ? { found_by: 'polling' } : {}),
      },
    };
    if (until === 'ready') return { steps: [accepted, ready], final: 'ready' };
    const fetch = fetchNaming(seen, itemId, requestId);
    if (!fetch) return { steps: [accepted, ready] };
    return { steps: [accepted, ready, fetchStep(fetch)], final: fetchFinal(fetch) };
  }
  return {
    steps: [
      accepted,
      {
        step: 'failed',
        at,
        detail: {
          error_code: report.data.error.error_code,
          message: report.data.error.error_message,
        },
      },
    ],
    final: 'failed',
  };
}

/** The ReportOverdue that gave up waiting for the request's report, if any. */
function overdueNaming(seen: readonly CashflowEvent[], requestId: string) {
  return seen.find(
    (e): e is EventOfType<'ReportOverdue'> =>
      e.type === 'ReportOverdue' && e.data.refresh_request_ids.includes(requestId),
  );
}

/**
 * The fetch that brought the request's data: the first ReportFetched naming it; failing that,
 * a ReportFetchFailed naming it (the fetcher gave up on its report).
 */
function fetchNaming(seen: readonly CashflowEvent[], itemId: string, requestId: string) {
  const naming = seen.filter(
    (e): e is Fetch =>
      (e.type === 'ReportFetched' || e.type === 'ReportFetchFailed') &&
      e.data.item_id === itemId &&
      e.data.refresh_request_ids.includes(requestId),
  );
  return naming.find((e) => e.type === 'ReportFetched') ?? naming[0];
}

function fetchStep(fetch: Fetch): Progress {
  if (fetch.type === 'ReportFetched') {
    const { data } = fetch;
    return {
      step: 'fetched',
      at: data.fetched_at,
      detail: {
        fetch_id: data.fetch_id,
        transactions: data.transactions,
        added: data.added,
        modified: data.modified,
        removed: data.removed,
        last_successful_update_time: data.last_successful_update_time,
      },
    };
  }
  const { data } = fetch;
  return {
    step: 'fetch_failed',
    at: data.failed_at,
    detail: {
      fetch_id: data.fetch_id,
      error_code: data.error.error_code,
      retryable: data.retryable,
      message: data.error.error_message,
    },
  };
}

const fetchFinal = (fetch: Fetch): Final => (fetch.type === 'ReportFetched' ? 'fetched' : 'failed');

/** Of the Item's reports seen, the one that answers an acceptance at `acceptedAt`. */
function reportAnswering(seen: readonly CashflowEvent[], itemId: string, acceptedAt: string) {
  const reports = seen
    .filter(
      (e): e is Report =>
        (e.type === 'ReportReady' || e.type === 'ReportFailed') && e.data.item_id === itemId,
    )
    .map((event) => ({ event, eventId: event.metadata.id, receivedAt: event.data.received_at }));
  return answeringReport(reports, acceptedAt)?.event;
}

/**
 * Follows the outcome, report and fetch topics from their ends as they are now: start it before
 * the request is published, so nothing in between is missed.
 */
export async function followOutcomes(kafka: Kafka, prefix: string) {
  const topics = [
    topicName('refreshOutcomes', prefix),
    topicName('reportOutcomes', prefix),
    topicName('reportFetches', prefix),
  ];
  const ends = await readHighWatermarks(kafka, topics);
  const groupId = `${prefix}cashflow-cli-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
  const seen: CashflowEvent[] = [];
  const ids = new Set<string>();
  let wake: () => void = () => undefined;
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
  for (const [key, offset] of ends) {
    const split = key.lastIndexOf(':');
    consumer.seek({
      topic: key.slice(0, split),
      partition: Number(key.slice(split + 1)),
      offset: String(offset),
    });
  }

  return {
    /** Shows each step of the request as it happens, until its final step or the time-out. */
    async follow(
      request: { readonly requestId: string; readonly itemId: string; readonly until: Until },
      timeoutMs: number,
      show: (p: Progress) => void,
    ): Promise<Final | 'timed_out'> {
      const deadline = Date.now() + timeoutMs;
      let shown = 0;
      for (;;) {
        const progress = progressOf(seen, request.requestId, request.itemId, request.until);
        for (const step of progress.steps.slice(shown)) show(step);
        shown = Math.max(shown, progress.steps.length);
        if (progress.final) return progress.final;
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

/**
 * The report fetcher's consumer group, `<prefix>cashflow-report-fetcher` (as
 * apps/report-fetcher/src/config.ts names it): members in it mean a fetcher runs.
 */
export const reportFetcherGroup = (prefix: string) => `${prefix}cashflow-report-fetcher`;

/**
 * Where `refresh --wait` ends unless told: at `fetched` when a report fetcher runs (its
 * consumer group has members), else at `ready`, as before the fetcher existed.
 */
export async function defaultUntil(kafka: Kafka, prefix: string): Promise<Until> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([reportFetcherGroup(prefix)]);
    return groups.some((g) => g.members.length > 0) ? 'fetched' : 'ready';
  } finally {
    await admin.disconnect();
  }
}
