import {
  FETCHER_SOURCE,
  INGRESS_SOURCE,
  WORKER_SOURCE,
  topicKeyForEvent,
  type CashflowEvent,
} from '@cashflow/contracts';
import { itemToRow, reportToRow, requestToRow } from '@cashflow/projection';
import { createHash } from 'node:crypto';
import { eventsFor } from '../../../../test/support/refresh-histories';
import {
  checkOutcomes,
  checkProjection,
  checkReports,
  checkSecrets,
  foldLog,
  recordText,
  type LogRecord,
  type ProjectionSnapshot,
  type SandboxDelivery,
} from './invariants';
import { checkItemHealth } from './health-invariants';

const NOW = Date.parse('2026-11-24T12:00:00.000Z');
const HOUR = 3_600_000;

/** Records on their topics, offsets counted per topic (one partition each). */
function log(events: CashflowEvent[], at = NOW - HOUR): LogRecord[] {
  const next = new Map<string, number>();
  return events.map((event, i) => {
    const topicKey = topicKeyForEvent(event.type);
    const offset = next.get(topicKey) ?? 0;
    next.set(topicKey, offset + 1);
    return {
      topicKey,
      topic: `t.${topicKey}`,
      partition: 0,
      offset: String(offset),
      timestamp: at + i,
      key: Buffer.from(event.data.item_id),
      value: Buffer.from(JSON.stringify(event.data)),
      headers: { ce_id: event.metadata.id },
      event,
    };
  });
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** A report as the ingress publishes it: its source, a delivery id that is a JWT's SHA-256. */
function fromIngress<T extends CashflowEvent>(event: T, jwt: string): T {
  return {
    ...event,
    data: { ...event.data, delivery_id: sha(jwt) },
    metadata: { ...event.metadata, source: INGRESS_SOURCE },
  };
}

describe('checkOutcomes', () => {
  const a = eventsFor('item-a');
  const b = eventsFor('item-b');
  const options = { now: NOW, maxPendingMs: 10 * 60_000 };

  describe('a request id used for two Items', () => {
    const records = () =>
      log([
        a.requested('shared'),
        a.accepted('shared', '2026-11-24T10:00:01.000Z'),
        b.requested('shared'),
      ]);
    /** The worker's refusal of the record at `position` (topic, partition 0, offset). */
    const refusal = (refused: LogRecord): LogRecord => ({
      ...refused,
      topicKey: 'deadLetter',
      topic: 't.deadLetter',
      offset: '0',
      event: null,
      headers: {
        dlq_error_code: 'REQUEST_ID_CONFLICT',
        dlq_source_topic: refused.topic,
        dlq_source_partition: String(refused.partition),
        dlq_source_offset: refused.offset,
      },
    });

    it('is no harmless copy: a violation when nothing refused the second request', () => {
      const finding = checkOutcomes(records(), options);
      expect(finding.holds).toBe(false);
      expect(finding.counts).toMatchObject({
        'id reused, not refused': 1,
        'duplicates absorbed': 0,
      });
      expect(finding.examples.join('\n')).toContain('request id shared is used by');
    });

    it('holds when the worker refused the second to the dead-letter topic, and says so', () => {
      const log = records();
      const finding = checkOutcomes([...log, refusal(log[2]!)], options);
      expect(finding.holds).toBe(true);
      expect(finding.counts).toMatchObject({
        'refused: id used first by another request': 1,
        'id reused, not refused': 0,
        'without outcome': 0,
      });
    });
  });

  it('holds when every request has one outcome, absorbing copies of requests and outcomes', () => {
    const records = log([
      a.requested('r1'),
      a.requested('r1'),
      a.accepted('r1', '2026-11-24T10:00:01.000Z'),
      a.accepted('r1', '2026-11-24T10:00:01.000Z'),
      b.requested('r2'),
      b.failed('r2', '2026-11-24T10:00:02.000Z'),
      a.requested('r3'),
      a.accepted('r3', '2026-11-24T10:00:03.000Z', 'r1'),
    ]);
    const finding = checkOutcomes(records, options);
    expect(finding.holds).toBe(true);
    expect(finding.counts).toMatchObject({
      requests: 3,
      outcomes: 3,
      accepted: 2,
      failed: 1,
      coalesced: 1,
      'duplicates absorbed': 2,
      violations: 0,
    });
  });

  it('finds a request answered twice, one unanswered, an orphan outcome and a crossed item', () => {
    const records = log([
      a.requested('twice'),
      a.accepted('twice', '2026-11-24T10:00:01.000Z'),
      a.failed('twice', '2026-11-24T10:00:02.000Z'),
      a.requested('silent'),
      b.accepted('nobody-asked', '2026-11-24T10:00:03.000Z'),
      a.requested('crossed'),
      b.accepted('crossed', '2026-11-24T10:00:04.000Z'),
    ]);
    const finding = checkOutcomes(records, options);
    expect(finding.holds).toBe(false);
    expect(finding.counts).toMatchObject({
      'answered twice': 1,
      'without outcome': 1,
      'outcome without request': 1,
      'outcome for another item': 1,
      violations: 4,
    });
    expect(finding.examples.join('\n')).toContain('request twice has 2 outcomes');
    expect(finding.examples.join('\n')).toContain('request silent (item-a');
  });

  it('counts a young request without outcome as pending, not a violation', () => {
    const finding = checkOutcomes(log([a.requested('new')], NOW - 1000), options);
    expect(finding.holds).toBe(true);
    expect(finding.counts.pending).toBe(1);
    expect(
      checkOutcomes(log([a.requested('new')], NOW - 1000), { now: NOW, maxPendingMs: 0 }).holds,
    ).toBe(false);
  });
});

describe('checkReports', () => {
  const sources = {
    ingressSource: INGRESS_SOURCE,
    fetcherSource: FETCHER_SOURCE,
    recordedPolls: new Map(),
  };
  const a = eventsFor('item-a');
  const ready = fromIngress(a.ready('w1', '2026-11-24T10:01:00.000Z'), 'jwt-1');
  const known = new Set(['item-a']);

  it('holds for reports from the ingress about known items, copies absorbed', () => {
    const finding = checkReports(log([ready, ready]), {
      ...sources,
      knownItems: known,
    });
    expect(finding.holds).toBe(true);
    expect(finding.counts).toMatchObject({ reports: 1, 'duplicates absorbed': 1 });
    expect(finding.notes).toHaveLength(1);
  });

  it('finds a report from elsewhere, one with a made-up delivery id and one about an unknown item', () => {
    const forged = { ...ready, metadata: { ...ready.metadata, id: 'x1', source: 'urn:someone' } };
    const madeUp = { ...ready, metadata: { ...ready.metadata, id: 'x2' } };
    madeUp.data = { ...ready.data, delivery_id: 'not-a-hash' };
    const stranger = fromIngress(
      eventsFor('item-z').ready('w9', '2026-11-24T10:02:00.000Z'),
      'jwt-9',
    );
    const finding = checkReports(log([forged, madeUp, stranger]), {
      ...sources,
      knownItems: known,
    });
    expect(finding.counts).toMatchObject({
      'not from the ingress': 2,
      'unknown item': 1,
      violations: 3,
    });
  });

  it('with the sandbox log: a report must match an attempt, and an acknowledged webhook must be on the log', () => {
    const deliveries = [
      {
        deliveryId: 'd1',
        itemId: 'item-a',
        webhookCode: 'CASHFLOW_REPORT_READY',
        attempts: [
          { jwtSha256: sha('jwt-0'), status: 503 },
          { jwtSha256: sha('jwt-1'), status: 200 },
        ],
      },
    ];
    const ok = checkReports(log([ready]), {
      ...sources,
      knownItems: known,
      sandboxDeliveries: deliveries,
    });
    expect(ok.holds).toBe(true);
    expect(ok.counts['sandbox deliveries acknowledged']).toBe(1);

    const lost = checkReports(log([]), {
      ...sources,
      knownItems: known,
      sandboxDeliveries: deliveries,
    });
    expect(lost.counts).toMatchObject({ 'acknowledged but lost': 1, violations: 1 });

    const unsent = fromIngress(a.ready('w2', '2026-11-24T10:03:00.000Z'), 'jwt-never-sent');
    const stray = checkReports(log([ready, unsent]), {
      ...sources,
      knownItems: known,
      sandboxDeliveries: deliveries,
    });
    expect(stray.counts).toMatchObject({ 'not sent by the sandbox': 1, violations: 1 });
  });

  describe('reports found by polling', () => {
    const polled = a.readyByPolling('p1', '2026-11-24T10:05:00.000Z', ['r1']);
    const poll = polled.data.poll!;
    const answer = {
      itemId: 'item-a',
      plaidRequestId: poll.plaid_request_id,
      lastSuccessfulUpdateTime: poll.last_successful_update_time,
    };
    const recorded = new Map([[poll.poll_id, answer]]);

    it('accepts one backed by the answer the fetcher recorded and, with the sandbox, by one it served', () => {
      const finding = checkReports(log([polled]), {
        ...sources,
        recordedPolls: recorded,
        knownItems: known,
        sandboxDeliveries: [],
        sandboxGetAnswers: new Map([[poll.plaid_request_id, answer]]),
      });
      expect(finding.holds).toBe(true);
      expect(finding.counts).toMatchObject({ reports: 1, 'found by polling': 1 });
    });

    it('finds one no recorded poll backs, one the sandbox never answered, and one not from the fetcher', () => {
      const unrecorded = checkReports(log([polled]), { ...sources, knownItems: known });
      expect(unrecorded.counts).toMatchObject({ 'polls not recorded': 1, violations: 1 });

      const otherData = { ...answer, lastSuccessfulUpdateTime: '2026-11-24T09:00:00.000Z' };
      const unserved = checkReports(log([polled]), {
        ...sources,
        recordedPolls: recorded,
        knownItems: known,
        sandboxDeliveries: [],
        sandboxGetAnswers: new Map([[poll.plaid_request_id, otherData]]),
      });
      expect(unserved.counts).toMatchObject({ 'not sent by the sandbox': 1, violations: 1 });

      const forged = { ...polled, metadata: { ...polled.metadata, source: INGRESS_SOURCE } };
      const wrongSource = checkReports(log([forged]), {
        ...sources,
        recordedPolls: recorded,
        knownItems: known,
      });
      expect(wrongSource.counts).toMatchObject({ 'not from the ingress': 1, violations: 1 });

      // Received before the data it saw was ready: it would answer refreshes the data lacks.
      const early = {
        ...polled,
        data: { ...polled.data, received_at: '2026-11-24T10:10:00.000Z' },
      };
      expect(
        checkReports(log([early]), { ...sources, recordedPolls: recorded, knownItems: known })
          .counts.violations,
      ).toBe(1);
    });
  });

  describe('reports given up (ReportOverdue)', () => {
    const accepted = a.accepted('r1', '2026-11-24T10:00:02Z');
    const overdue = a.overdue('o1', '2026-11-24T16:00:02Z', ['r1']);
    const recordedOverdue = new Map([['o1', { itemId: 'item-a', requestIds: ['r1'] }]]);

    it('accepts one the fetcher recorded, about requests accepted for its Item', () => {
      const finding = checkReports(log([accepted, overdue]), {
        ...sources,
        recordedOverdue,
        knownItems: known,
      });
      expect(finding.holds).toBe(true);
      expect(finding.counts).toMatchObject({ 'given up (ReportOverdue)': 1 });
    });

    it('finds one not recorded, one from elsewhere and one about a request never accepted', () => {
      expect(
        checkReports(log([accepted, overdue]), { ...sources, knownItems: known }).counts,
      ).toMatchObject({ 'polls not recorded': 1, violations: 1 });
      const forged = { ...overdue, metadata: { ...overdue.metadata, source: 'urn:someone' } };
      expect(
        checkReports(log([accepted, forged]), { ...sources, recordedOverdue, knownItems: known })
          .counts.violations,
      ).toBe(1);
      expect(
        checkReports(log([overdue]), { ...sources, recordedOverdue, knownItems: known }).counts
          .violations,
      ).toBe(1);
    });
  });

  it('does not call a webhook lost that was acknowledged after the log was read', () => {
    const later: SandboxDelivery = {
      deliveryId: 'd2',
      itemId: 'item-a',
      webhookCode: 'CASHFLOW_REPORT_READY',
      attempts: [{ jwtSha256: sha('jwt-2'), status: 200 }],
    };
    const finding = checkReports(log([]), {
      ...sources,
      knownItems: new Set(['item-a']),
      sandboxDeliveries: [later],
      deliveriesBeforeLog: [],
    });
    expect(finding.holds).toBe(true);
  });
});

describe('checkProjection', () => {
  const a = eventsFor('item-a');
  const b = eventsFor('item-b');
  const events = [
    a.requested('r1', 90),
    a.accepted('r1', '2026-11-24T10:00:01.000Z'),
    fromIngress(a.ready('w1', '2026-11-24T10:00:05.000Z'), 'jwt-1'),
    b.requested('r2'),
    b.failed('r2', '2026-11-24T10:00:02.000Z'),
    a.otherWebhook('w2', '2026-11-24T10:00:06.000Z'),
  ];
  const records = log(events);
  const everything = new Map(
    [...new Set(records.map((r) => `${r.topic}:0`))].map((k) => [k, '100']),
  );

  /** The projection a correct projector would hold, built from `source` in its order. */
  function snapshot(source: LogRecord[], checkpoints = everything): ProjectionSnapshot {
    const fold = foldLog(source, checkpoints);
    return {
      checkpoints,
      items: [...fold.items.values()].map((s) => itemToRow(s.item)),
      requests: [...fold.items.values()].flatMap((s) => [...s.requests.values()].map(requestToRow)),
      reports: [...fold.items.values()].flatMap((s) => [...s.reports.values()].map(reportToRow)),
      eventCount: fold.copies,
    };
  }

  it('holds for the projection of the same log, whatever order the topics were applied in', () => {
    const reordered = [...records].reverse().map((r, i) => ({ ...r, timestamp: NOW + i }));
    const finding = checkProjection(records, snapshot(reordered));
    expect(finding.holds).toBe(true);
    expect(finding.counts).toMatchObject({ items: 2, requests: 2, events: 6, mismatches: 0 });
  });

  it('compares a report delivered twice by its earliest-received copy, the store keeping a row per copy', () => {
    // One delivery taken by two ingress replicas: the report's one id, received 0.7 s apart.
    const twice = log([...events, fromIngress(a.ready('w1', '2026-11-24T10:00:05.700Z'), 'jwt-1')]);
    const held = snapshot(twice);
    const copy = reportToRow({
      ...[...foldLog(twice, everything).items.get('item-a')!.reports.values()][0]!,
      receivedAt: '2026-11-24T10:00:05.700Z',
    });
    const finding = checkProjection(twice, { ...held, reports: [...held.reports, copy] });
    expect(finding.examples).toEqual([]);
    expect(finding.holds).toBe(true);
  });

  it('finds a changed value, a missing row, an extra row and a wrong event count', () => {
    const good = snapshot(records);
    const items = good.items.map((row) =>
      row.item_id === 'item-a' ? { ...row, status: 'failed', refreshes: 7 } : row,
    );
    const extra = { ...good.requests[0]!, request_id: 'r-made-up' };
    const tampered: ProjectionSnapshot = {
      ...good,
      items,
      requests: [...good.requests.filter((r) => r.request_id !== 'r2'), extra],
      eventCount: good.eventCount + 1,
    };
    const finding = checkProjection(records, tampered);
    expect(finding.holds).toBe(false);
    expect(finding.counts.mismatches).toBe(4);
    const text = finding.examples.join('\n');
    expect(text).toContain('item item-a: status is "failed", the log gives "ready"');
    expect(text).toContain('request item-b r2: in the log, missing from the projection');
    expect(text).toContain('request item-a r-made-up: in the projection, not in the log');
    expect(text).toContain('projection_events holds 7 records, the log below the checkpoints 6');
  });

  it('finds a report the projection does not hold', () => {
    const good = snapshot(records);
    const finding = checkProjection(records, { ...good, reports: [] });
    expect(finding.holds).toBe(false);
    expect(finding.examples).toEqual(['report item-a w1: in the log, missing from the projection']);
  });

  it("compares the report fetches' columns too", () => {
    const report = { id: 'w1', receivedAt: '2026-11-24T10:00:05.000Z' };
    const fetched = log([...events, a.fetched('f1', '2026-11-24T10:00:30.000Z', report, ['r1'])]);
    const checkpoints = new Map(everything).set(`${fetched[fetched.length - 1]!.topic}:0`, '100');
    const good = snapshot(fetched, checkpoints);
    expect(good.items.find((row) => row.item_id === 'item-a')).toMatchObject({
      transaction_count: 42,
    });
    expect(checkProjection(fetched, good).holds).toBe(true);
    const items = good.items.map((row) =>
      row.item_id === 'item-a' ? { ...row, transaction_count: 41 } : row,
    );
    const finding = checkProjection(fetched, { ...good, items });
    expect(finding.examples).toEqual(['item item-a: transaction_count is 41, the log gives 42']);
  });

  it('counts every copy of an event the log holds, as projection_events does', () => {
    const copied = log([...events, events[0]!]);
    const fold = foldLog(copied, everything);
    expect(fold.events.size).toBe(6);
    expect(fold.copies).toBe(7);
    const finding = checkProjection(copied, snapshot(copied));
    expect(finding.holds).toBe(true);
  });

  it('folds only what lies below the checkpoints', () => {
    const requestedTopic = records.find((r) => r.topicKey === 'refreshRequested')!.topic;
    const partial = new Map(everything).set(`${requestedTopic}:0`, '1');
    const fold = foldLog(records, partial);
    // r2's RefreshRequested (offset 1) lies beyond the checkpoint: known from its outcome only.
    expect(fold.items.get('item-b')?.requests.get('r2')?.requestOffset).toBeNull();
    expect(fold.items.get('item-a')?.requests.get('r1')?.requestOffset).toBe('0');
  });
});

describe('checkSecrets', () => {
  const a = eventsFor('item-a');

  it('finds known secrets and secret shapes, naming where but never the value', () => {
    const token = 'access-sandbox-00000000-fake-token-for-this-test';
    const clean = log([a.requested('r1')]);
    const finding = checkSecrets(
      [
        ...clean.map(recordText),
        { where: 'worker.log', text: `{"msg":"calling plaid","secret":"s3cr3t-value-xyz"}` },
        { where: 'ingress.log', text: `{"jwk":{"kty":"EC","d":"${'A'.repeat(43)}"}}` },
        { where: 'cli.log', text: `token=${token}` },
        { where: 'keys.pem', text: '-----BEGIN PRIVATE KEY-----\nMIG...' },
      ],
      [{ name: 'PLAID_SECRET', value: 's3cr3t-value-xyz' }],
    );
    expect(finding.holds).toBe(false);
    expect(finding.counts).toMatchObject({ searched: 5, leaks: 4 });
    expect(finding.examples).toEqual([
      'worker.log contains PLAID_SECRET',
      'ingress.log contains a JWK private key',
      'cli.log contains a Plaid access token',
      'keys.pem contains a PEM private key',
    ]);
    expect(finding.examples.join('')).not.toContain('s3cr3t');
  });

  it('holds for ordinary events and ignores values too short to mean anything', () => {
    const finding = checkSecrets(log([a.requested('r1')]).map(recordText), [
      { name: 'short', value: 'item' },
    ]);
    expect(finding.holds).toBe(true);
  });
});

describe('checkItemHealth', () => {
  const h = eventsFor('item-h');
  const fromWorker = <T extends CashflowEvent>(event: T): T => ({
    ...event,
    metadata: { ...event.metadata, source: WORKER_SOURCE },
  });
  const refused = (
    id: string,
    failedAt: string,
    sequence: number,
    reason = 'ITEM_LOGIN_REQUIRED',
  ) => {
    const failed = h.failed(id, failedAt, reason);
    return fromWorker({
      ...failed,
      data: {
        ...failed.data,
        attempts: 0,
        error: {
          source: 'worker' as const,
          error_code: reason,
          error_message: 'not sent to Plaid',
        },
        item_health: {
          status: 'needs_user_action' as const,
          reason,
          consent_expires_at: null,
          sequence,
        },
      },
    });
  };
  const broke = h.needsAttention('h1', '2026-11-24T10:00:00Z');
  const repaired = h.restored('h2', '2026-11-24T10:10:00Z');

  it('holds for numbered changes that follow each other, read in any order and twice, and a refusal between them', () => {
    const finding = checkItemHealth(
      log([repaired, broke, broke, refused('r1', '2026-11-24T10:05:00Z', 1)]),
    );
    expect(finding.examples).toEqual([]);
    expect(finding).toMatchObject({
      holds: true,
      counts: { 'health changes': 2, items: 1, 'refused for health': 1, violations: 0 },
    });
  });

  it('finds a change missing, one that does not follow, and one from elsewhere', () => {
    const third = h.needsAttention('h3', '2026-11-24T10:20:00Z', 'ITEM_LOGIN_REQUIRED', 3);
    const restored = h.restored('h4', '2026-11-24T10:30:00Z', 4);
    const forged = { ...restored, metadata: { ...restored.metadata, source: 'urn:elsewhere' } };
    const again = h.needsAttention('h5', '2026-11-24T10:40:00Z', 'ITEM_LOGIN_REQUIRED', 4);
    const finding = checkItemHealth(log([broke, third, forged, again]));
    expect(finding.holds).toBe(false);
    const lines = finding.examples.join('\n');
    expect(lines).toMatch(/health change 2 of 4 is missing/);
    expect(lines).toMatch(/h4 .* not the refresh worker/);
    expect(lines).toMatch(
      /h5 \(item-h, change 4\) starts from healthy, but change 3 left needs_user_action/,
    );
  });

  it('finds a refusal resting on no change, and one made long after the Item recovered', () => {
    const unknown = refused('r1', '2026-11-24T10:05:00Z', 7);
    const stale = refused('r2', '2026-11-24T10:30:00Z', 1);
    const finding = checkItemHealth(log([broke, repaired, unknown, stale]));
    expect(finding.counts.violations).toBe(2);
    const lines = finding.examples.join('\n');
    expect(lines).toMatch(/r1-failed .* as of change 7, which no ItemNeedsAttention gave/);
    expect(lines).toMatch(/r2-failed .* but change 2 \(healthy\) was decided at/);
  });
});
