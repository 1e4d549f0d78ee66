import { createEvent, topicKeyForEvent, type CashflowEvent } from '@cashflow/contracts';
import { sampleEvent } from '../../../../test/support/sample-events';
import type { LogRecord } from './invariants';
import {
  canonical,
  checkChangelog,
  checkFetchedReports,
  checkFetchedRequests,
  checkStoredAgainstSandbox,
} from './report-invariants';

const NOW = Date.parse('2026-11-24T12:00:00.000Z');
const MIN = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

function log(events: CashflowEvent[]): LogRecord[] {
  return events.map((event, i) => ({
    topicKey: topicKeyForEvent(event.type),
    topic: `t.${topicKeyForEvent(event.type)}`,
    partition: 0,
    offset: String(i),
    timestamp: NOW,
    key: Buffer.from(event.data.item_id),
    value: null,
    headers: {},
    event,
  }));
}

function accepted(itemId: string, at: number): CashflowEvent {
  const e = sampleEvent('RefreshAccepted', itemId);
  if (e.type !== 'RefreshAccepted') throw new Error('sample');
  return createEvent('RefreshAccepted', { ...e.data, accepted_at: iso(at) }, e.metadata);
}
function ready(itemId: string, at: number): CashflowEvent {
  const e = sampleEvent('ReportReady', itemId);
  if (e.type !== 'ReportReady') throw new Error('sample');
  return createEvent('ReportReady', { ...e.data, received_at: iso(at) }, e.metadata);
}
/** A fetch of the report received at `reportAt`, its data of `dataAt` (by default just before). */
function fetched(
  itemId: string,
  reportAt: number,
  dataAt = reportAt - 100,
  requestIds: string[] = [],
): CashflowEvent {
  const e = sampleEvent('ReportFetched', itemId);
  if (e.type !== 'ReportFetched') throw new Error('sample');
  return createEvent(
    'ReportFetched',
    {
      ...e.data,
      report_received_at: iso(reportAt),
      last_successful_update_time: iso(dataAt),
      refresh_request_ids: requestIds,
    },
    e.metadata,
  );
}

describe('checkFetchedReports (rule 5)', () => {
  it('needs no snapshot for an acceptance the fetcher gave up on (ReportOverdue)', () => {
    const a = accepted('item-o', NOW - 300 * MIN);
    if (a.type !== 'RefreshAccepted') throw new Error('sample');
    // An old-data report answers it by time; its own data never came.
    const old = ready('item-o', NOW - 299 * MIN);
    const oldFetch = fetched('item-o', NOW - 299 * MIN, NOW - 400 * MIN);
    const opts = { now: NOW, maxPendingMs: 60 * MIN };
    expect(checkFetchedReports(log([a, old, oldFetch]), opts).holds).toBe(false);
    const overdue = sampleEvent('ReportOverdue', 'item-o');
    if (overdue.type !== 'ReportOverdue') throw new Error('sample');
    const given = createEvent(
      'ReportOverdue',
      { ...overdue.data, refresh_request_ids: [a.data.refresh_request_id] },
      overdue.metadata,
    );
    expect(checkFetchedReports(log([a, old, oldFetch, given]), opts).holds).toBe(true);
  });

  it('counts a report found by polling as pending from when it was published, not its data time', () => {
    const a = accepted('item-p', NOW - 200 * MIN);
    const e = ready('item-p', NOW - 190 * MIN);
    if (e.type !== 'ReportReady') throw new Error('sample');
    const polled = createEvent(
      'ReportReady',
      {
        ...e.data,
        found_by: 'polling',
        poll: {
          poll_id: e.metadata.id,
          plaid_request_id: 'req-1',
          last_successful_update_time: iso(NOW - 190 * MIN),
          refresh_request_ids: ['r'],
          polled_at: iso(NOW - 5 * MIN),
        },
      },
      e.metadata,
    );
    // A fetch event of another Item: a report fetcher has run, so rule 5 is checked.
    const other = fetched('item-other', NOW - 10 * MIN);
    const finding = checkFetchedReports(log([a, polled, other]), {
      now: NOW,
      maxPendingMs: 60 * MIN,
    });
    expect(finding).toMatchObject({ holds: true, counts: { pending: 1 } });
  });

  const options = { now: NOW, maxPendingMs: 10 * MIN };

  it('holds when the latest ready report of each Item was fetched', () => {
    const finding = checkFetchedReports(
      log([
        accepted('a', NOW - 60 * MIN),
        ready('a', NOW - 59 * MIN),
        fetched('a', NOW - 59 * MIN),
        fetched('b', NOW - 30 * MIN),
      ]),
      options,
    );
    expect(finding.holds).toBe(true);
  });

  it('finds a newer refresh whose report was never fetched, once it is older than max-pending', () => {
    const events = [
      accepted('a', NOW - 60 * MIN),
      ready('a', NOW - 59 * MIN),
      fetched('a', NOW - 59 * MIN),
      accepted('a', NOW - 30 * MIN),
      ready('a', NOW - 29 * MIN),
    ];
    const finding = checkFetchedReports(log(events), options);
    expect(finding.holds).toBe(false);
    expect(finding.examples[0]).toMatch(/^item a: ReportReady received/);
    const young = checkFetchedReports(log(events), { now: NOW, maxPendingMs: 60 * MIN });
    expect(young.holds).toBe(true);
    expect(young.counts.pending).toBe(1);
  });

  it('finds a refresh accepted just after the fetched data, whose own report was never fetched', () => {
    // The report of the refresh before was received 0.4 s before this acceptance: it answers
    // it by time, but its data predates it.
    const events = [
      accepted('a', NOW - 60 * MIN),
      ready('a', NOW - 59 * MIN),
      fetched('a', NOW - 59 * MIN),
      accepted('a', NOW - 59 * MIN + 400),
      ready('a', NOW - 58 * MIN),
    ];
    const finding = checkFetchedReports(log(events), options);
    expect(finding.holds).toBe(false);
    expect(finding.examples[0]).toMatch(
      /^item a: ReportReady received .* \(request .*, accepted .*\), no fetch of it; the last fetch followed the report received .*, with data of .*$/,
    );
    const fetchedLater = checkFetchedReports(
      log([...events, fetched('a', NOW - 58 * MIN)]),
      options,
    );
    expect(fetchedLater.holds).toBe(true);
  });

  it('is not checked when no fetcher has run', () => {
    const finding = checkFetchedReports(log([ready('a', NOW - 59 * MIN)]), options);
    expect(finding.holds).toBe(true);
    expect(finding.notes?.[0]).toMatch(/no report fetcher has run/);
  });
});

describe('checkFetchedRequests (rule 5b)', () => {
  function acceptedAs(itemId: string, requestId: string, at: number): CashflowEvent {
    const e = accepted(itemId, at);
    if (e.type !== 'RefreshAccepted') throw new Error('sample');
    return createEvent('RefreshAccepted', { ...e.data, refresh_request_id: requestId }, e.metadata);
  }

  it('holds when each request a fetch names was accepted no later than its data', () => {
    const finding = checkFetchedRequests(
      log([
        acceptedAs('a', 'r-1', NOW - 60 * MIN),
        fetched('a', NOW - 59 * MIN, NOW - 59 * MIN - 100, ['r-1']),
      ]),
    );
    expect(finding.holds).toBe(true);
    expect(finding.counts.requests_named).toBe(1);
  });

  it('finds a fetch naming a request accepted after its data', () => {
    const finding = checkFetchedRequests(
      log([
        acceptedAs('a', 'r-1', NOW - 60 * MIN),
        acceptedAs('a', 'r-2', NOW - 59 * MIN + 400),
        fetched('a', NOW - 59 * MIN, NOW - 59 * MIN - 100, ['r-1', 'r-2']),
      ]),
    );
    expect(finding.holds).toBe(false);
    expect(finding.examples).toHaveLength(1);
    expect(finding.examples[0]).toMatch(/names request r-2 accepted .* but its data is of/);
  });
});

describe('checkStoredAgainstSandbox (rule 6)', () => {
  const at = iso(NOW);
  const t1 = { transaction_id: 't1', amount: 1, name: 'x' };
  it('compares when the data has not changed since the fetch, whatever the key order', () => {
    const same = checkStoredAgainstSandbox([
      {
        itemId: 'a',
        storedLastUpdate: at,
        servedLastUpdate: at,
        stored: new Map([['t1', { name: 'x', amount: 1, transaction_id: 't1' }]]),
        served: new Map([['t1', t1]]),
      },
    ]);
    expect(same.holds).toBe(true);
    const different = checkStoredAgainstSandbox([
      {
        itemId: 'a',
        storedLastUpdate: at,
        servedLastUpdate: at,
        stored: new Map([['t1', { ...t1, amount: 2 }]]),
        served: new Map<string, unknown>([
          ['t1', t1],
          ['t2', { transaction_id: 't2' }],
        ]),
      },
    ]);
    expect(different.holds).toBe(false);
    expect(different.examples[0]).toBe(
      'item a: 1 served but not stored, 0 stored but not served, 1 different',
    );
  });

  it('leaves out Items whose data changed after the fetch', () => {
    const finding = checkStoredAgainstSandbox([
      {
        itemId: 'a',
        storedLastUpdate: at,
        servedLastUpdate: iso(NOW + 1),
        stored: new Map(),
        served: new Map([['t1', t1]]),
      },
    ]);
    expect(finding.holds).toBe(true);
    expect(finding.counts.changed_since).toBe(1);
  });
});

describe('checkChangelog (rule 7)', () => {
  const itemOf = (key: string) => (JSON.parse(key) as { item_id: string }).item_id;
  const key = (item: string, id: string) => JSON.stringify({ item_id: item, transaction_id: id });

  it('holds when the latest record of each stored transaction is its content and removed ones are tombstoned', () => {
    const finding = checkChangelog(
      new Map([
        [key('a', 't1'), canonical({ b: 1, a: 2 })],
        [key('a', 't2'), null],
      ]),
      new Map([[key('a', 't1'), canonical({ a: 2, b: 1 })]]),
      new Set(),
      itemOf,
    );
    expect(finding.holds).toBe(true);
  });

  it('finds a stored transaction missing from the changelog, a stale one, and one removed without a tombstone', () => {
    const finding = checkChangelog(
      new Map([
        [key('a', 't1'), canonical({ amount: 1 })],
        [key('a', 't3'), canonical({ amount: 3 })],
      ]),
      new Map([
        [key('a', 't1'), canonical({ amount: 2 })],
        [key('a', 't2'), canonical({ amount: 2 })],
      ]),
      new Set(),
      itemOf,
    );
    expect(finding.holds).toBe(false);
    expect(finding.counts.violations).toBe(3);
  });

  it('leaves Items with unpublished fetches for the next check', () => {
    const finding = checkChangelog(
      new Map(),
      new Map([[key('a', 't1'), canonical({ amount: 2 })]]),
      new Set(['a']),
      itemOf,
    );
    expect(finding.holds).toBe(true);
  });
});
