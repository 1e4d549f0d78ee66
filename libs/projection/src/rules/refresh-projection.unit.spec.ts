import type { CashflowEvent } from '@cashflow/contracts';
import fc from 'fast-check';
import {
  eventsFor,
  historyEvents,
  historyPlan,
  inTimeOrder,
  interleave,
  interleaving,
  longHistoryPlan,
  topicByTopic,
} from '../../../../test/support/refresh-histories';
import { foldEvents as fold, type PositionedEvent } from './fold';
import { evolve, initialItem, type ItemProjection, type Position } from './refresh-projection';

/** Everything but lastEvent (which records arrival order by definition). */
function comparable(items: Map<string, ItemProjection>) {
  return Object.fromEntries(
    [...items].map(([id, { item, requests }]) => {
      const rest = { ...item, lastEvent: undefined };
      const rows = Object.fromEntries([...requests].sort(([a], [b]) => a.localeCompare(b)));
      return [id, { item: rest, requests: rows }];
    }),
  );
}

const item = 'item-1';
let offset = 0;
const at = (topic: string): Position => ({ topic, partition: 0, offset: String(offset++) });
const {
  requested,
  accepted,
  failed,
  ready,
  reportFailed,
  otherWebhook,
  fetched,
  fetchFailed,
  readyByPolling,
  overdue,
  needsAttention,
  restored,
} = eventsFor(item);

function run(...events: CashflowEvent[]): ItemProjection {
  let state = initialItem(item);
  for (const event of events) {
    const topic =
      event.type === 'RefreshRequested'
        ? 'requested'
        : event.type.startsWith('Refresh')
          ? 'outcomes'
          : event.type.startsWith('ReportFetch')
            ? 'fetches'
            : 'reports';
    state = evolve(state, event, at(topic));
  }
  return state;
}

/** The state without what records arrival order (lastEvent, request offsets). */
const orderFree = (p: ItemProjection) => ({
  item: { ...p.item, lastEvent: null },
  requests: new Map([...p.requests].map(([id, r]) => [id, { ...r, requestOffset: null }])),
  reports: p.reports,
});

describe('refresh projection rules', () => {
  it('follows a refresh from requested through accepted to ready', () => {
    const r = requested('r1', 90);
    expect(run(r).item).toMatchObject({ status: 'requested', daysRequested: 90, refreshes: 0 });
    const a = run(r, accepted('r1', '2026-11-24T10:00:02Z'));
    expect(a.item).toMatchObject({ status: 'refreshing', plaidRequestId: 'plaid-r1' });
    const done = run(
      r,
      accepted('r1', '2026-11-24T10:00:02Z'),
      ready('x1', '2026-11-24T10:01:00Z'),
    );
    expect(done.item).toMatchObject({
      status: 'ready',
      readyAt: '2026-11-24T10:01:00Z',
      refreshes: 1,
      latestRequestId: 'r1',
    });
    expect(done.requests.get('r1')).toMatchObject({ status: 'ready', reportEventId: 'x1' });
  });

  it("keeps a failed request's days the same whichever of request and outcome comes first", () => {
    // The worker failed it as part of a 365-day call; the request itself asked for 30.
    const r = requested('r1', 30);
    const f = failed('r1', '2026-11-24T10:00:02Z');
    const requestFirst = run(r, f).requests.get('r1');
    const outcomeFirst = run(f, r).requests.get('r1');
    expect(requestFirst?.daysRequested).toBe(365);
    expect(outcomeFirst?.daysRequested).toBe(365);
  });

  it('takes a ReportReady that arrives before the RefreshAccepted it answers', () => {
    const state = run(
      requested('r1'),
      ready('x1', '2026-11-24T10:00:03Z'),
      accepted('r1', '2026-11-24T10:00:02Z'),
    );
    expect(state.item).toMatchObject({ status: 'ready', refreshes: 1 });
    expect(state.requests.get('r1')?.readyAt).toBe('2026-11-24T10:00:03Z');
  });

  it('does not let an older report complete a refresh accepted well after it', () => {
    const state = run(
      requested('r1'),
      ready('x0', '2026-11-24T09:00:00Z'),
      accepted('r1', '2026-11-24T10:00:02Z'),
    );
    expect(state.item.status).toBe('refreshing');
  });

  it('treats a repeated ReportReady as a no-op', () => {
    const once = run(
      requested('r1'),
      accepted('r1', '2026-11-24T10:00:02Z'),
      ready('x1', '2026-11-24T10:01:00Z'),
    );
    const twice = evolve(once, ready('x2', '2026-11-24T10:01:30Z'), at('reports'));
    expect(twice.item).toMatchObject({
      status: 'ready',
      readyAt: '2026-11-24T10:01:00Z',
      refreshes: 1,
    });
    expect(twice.requests).toEqual(once.requests);
    // The same event delivered again changes nothing at all.
    const again = evolve(once, ready('x1', '2026-11-24T10:01:00Z'), at('reports'));
    expect(again.reports).toEqual(once.reports);
  });

  it('keeps the Item ready when a late RefreshFailed for an older request arrives', () => {
    const state = run(
      requested('r1'),
      requested('r2'),
      accepted('r2', '2026-11-24T10:00:02Z'),
      ready('x1', '2026-11-24T10:01:00Z'),
      failed('r1', '2026-11-24T10:00:01Z'),
    );
    expect(state.item).toMatchObject({ status: 'ready', latestRequestId: 'r2' });
    expect(state.requests.get('r1')).toMatchObject({ status: 'failed' });
    expect(state.item.lastError).toMatchObject({ code: 'ITEM_LOGIN_REQUIRED', source: 'plaid' });
  });

  it('marks the refresh failed when the webhook carries an error', () => {
    const state = run(
      requested('r1'),
      accepted('r1', '2026-11-24T10:00:02Z'),
      reportFailed('x1', '2026-11-24T10:01:00Z'),
    );
    expect(state.item).toMatchObject({ status: 'failed', failedAt: '2026-11-24T10:01:00Z' });
    expect(state.item.lastError).toMatchObject({ source: 'webhook', code: 'ITEM_LOGIN_REQUIRED' });
    expect(state.requests.get('r1')?.status).toBe('report_failed');
  });

  it('ranks a request known only from its outcome above every request seen', () => {
    const state = run(requested('r1'), accepted('r2', '2026-11-24T10:00:02Z'));
    expect(state.item).toMatchObject({ latestRequestId: 'r2', status: 'refreshing' });
    const later = evolve(state, requested('r2'), at('requested'));
    expect(later.item.latestRequestId).toBe('r2');
    expect(later.requests.get('r2')).toMatchObject({
      status: 'accepted',
      requestOffset: expect.any(String),
    });
  });

  it('counts a coalesced request as ready but not as another refresh', () => {
    const state = run(
      requested('r1'),
      requested('r2'),
      accepted('r1', '2026-11-24T10:00:02Z'),
      accepted('r2', '2026-11-24T10:00:02Z', 'r1'),
      ready('x1', '2026-11-24T10:01:00Z'),
    );
    expect(state.requests.get('r2')).toMatchObject({ status: 'ready', coalescedInto: 'r1' });
    expect(state.item.refreshes).toBe(1);
  });

  it('lets a report received earlier take over a request a later-received one completed', () => {
    // Two ingress replicas: the later webhook reached Kafka first.
    const r = requested('r1');
    const a = accepted('r1', '2026-11-24T10:00:02Z');
    const early = reportFailed('x1', '2026-11-24T10:00:30Z', 'PRODUCT_NOT_READY');
    const late = ready('x2', '2026-11-24T10:01:00Z');
    const landedOutOfOrder = run(r, a, late, early);
    expect(landedOutOfOrder.requests.get('r1')).toMatchObject({
      status: 'report_failed',
      failedAt: '2026-11-24T10:00:30Z',
      readyAt: null,
      reportEventId: 'x1',
      error: { code: 'PRODUCT_NOT_READY', source: 'webhook' },
    });
    expect(landedOutOfOrder.item).toMatchObject({ status: 'failed', refreshes: 0 });
    // The same as had they landed in the order they were received (positions aside).
    const inReceivedOrder = run(r, a, early, late);
    const withoutPositions = (p: ItemProjection) => ({
      item: { ...p.item, lastEvent: null },
      request: { ...p.requests.get('r1'), requestOffset: null },
    });
    expect(withoutPositions(landedOutOfOrder)).toEqual(withoutPositions(inReceivedOrder));
  });

  it('completes a request with the earliest-received copy of a report delivered twice, whatever the order', () => {
    // One webhook delivery taken by two ingress replicas (a balancer sent it again when the first
    // died before answering): two events with the report's one id, received 0.7 s apart.
    const r = requested('r1');
    const a = accepted('r1', '2026-11-24T10:00:02Z');
    const first = ready('x1', '2026-11-24T10:00:59.213Z');
    const again = ready('x1', '2026-11-24T10:00:59.901Z');
    const orders = [
      [a, first, again],
      [a, again, first],
      [first, again, a],
      [again, first, a],
      [first, a, again],
      [again, a, first],
    ];
    const states = orders.map((order) => run(r, ...order));
    for (const state of states) {
      expect(state.requests.get('r1')).toMatchObject({
        status: 'ready',
        readyAt: '2026-11-24T10:00:59.213Z',
        reportEventId: 'x1',
      });
      expect(orderFree(state)).toEqual(orderFree(states[0]!));
    }
  });

  it('gives an Item known only from reports the newest of each kind, whatever their order', () => {
    const x1 = ready('x1', '2026-11-24T10:00:00Z');
    const x2 = reportFailed('x2', '2026-11-24T10:05:00Z');
    for (const state of [run(x1, x2), run(x2, x1)]) {
      expect(state.item).toMatchObject({
        status: 'failed',
        readyAt: '2026-11-24T10:00:00Z',
        failedAt: '2026-11-24T10:05:00Z',
        latestRequestId: null,
      });
    }
  });

  describe('reports that never came (rule 13)', () => {
    const acceptedAt = '2026-11-24T10:00:02.000Z';
    const overdueAt = '2026-11-24T10:30:02.000Z';

    it('makes an accepted request with no report overdue, the Item too', () => {
      const state = run(
        requested('r1'),
        accepted('r1', acceptedAt),
        overdue('o1', overdueAt, ['r1']),
      );
      expect(state.requests.get('r1')).toMatchObject({ status: 'overdue', overdueAt });
      expect(state.item.status).toBe('overdue');
    });

    it('lets a late report complete an overdue request, whichever is read first', () => {
      const late = ready('late', '2026-11-24T10:40:00.000Z');
      const orders = [
        [requested('r1'), accepted('r1', acceptedAt), overdue('o1', overdueAt, ['r1']), late],
        [requested('r1'), accepted('r1', acceptedAt), late, overdue('o1', overdueAt, ['r1'])],
        [late, overdue('o1', overdueAt, ['r1']), requested('r1'), accepted('r1', acceptedAt)],
        [overdue('o1', overdueAt, ['r1']), requested('r1'), accepted('r1', acceptedAt), late],
      ];
      const states = orders.map((events) => orderFree(run(...events)));
      expect(states[0]!.requests.get('r1')).toMatchObject({
        status: 'ready',
        overdueAt,
        reportEventId: 'late',
      });
      expect(states[0]!.item).toMatchObject({ status: 'ready', refreshes: 1 });
      for (const state of states.slice(1)) expect(state).toEqual(states[0]);
    });

    it('is overdue when ReportOverdue is read before the acceptance and no report answers', () => {
      const state = run(
        overdue('o1', overdueAt, ['r1']),
        requested('r1'),
        accepted('r1', acceptedAt),
      );
      expect(state.requests.get('r1')).toMatchObject({ status: 'overdue', overdueAt });
    });

    it('keeps the earliest overdue_at when named twice', () => {
      const later = '2026-11-24T11:00:00.000Z';
      const a = run(
        requested('r1'),
        accepted('r1', acceptedAt),
        overdue('o2', later, ['r1']),
        overdue('o1', overdueAt, ['r1']),
      );
      expect(a.requests.get('r1')!.overdueAt).toBe(overdueAt);
    });

    it('completes a request with a report found by polling and keeps how it was found', () => {
      const polled = readyByPolling('p1', '2026-11-24T10:20:00.000Z', ['r1']);
      const fetch = fetched(
        'f1',
        '2026-11-24T10:20:05.000Z',
        {
          id: polled.metadata.id,
          receivedAt: '2026-11-24T10:20:00.000Z',
        },
        ['r1'],
      );
      for (const events of [
        [requested('r1'), accepted('r1', acceptedAt), polled, fetch],
        [requested('r1'), accepted('r1', acceptedAt), fetch, polled],
      ]) {
        const state = run(...events);
        expect(state.requests.get('r1')).toMatchObject({
          status: 'ready',
          reportEventId: polled.metadata.id,
        });
        expect(state.reports.get(polled.metadata.id)!.foundBy).toBe('polling');
      }
    });
  });

  it('leaves refresh state alone for other webhook codes', () => {
    const before = run(requested('r1'));
    const other = otherWebhook('w1', '2026-11-24T10:00:05Z');
    expect(evolve(before, other, at('webhooks'))).toBe(before);
  });

  describe('Item health (rule 14)', () => {
    const broke = needsAttention('h1', '2026-11-24T10:00:10.000Z');
    const repaired = restored('h2', '2026-11-24T10:00:20.000Z');

    it.each([
      ['in order', [broke, repaired]],
      ['the restoration read first', [repaired, broke]],
    ])('keeps the newest change, %s', (_, events) => {
      const state = run(requested('r1'), ...events);
      expect(state.item.health).toEqual({
        status: 'healthy',
        reason: null,
        consentExpiresAt: null,
        changedAt: '2026-11-24T10:00:20.000Z',
        sequence: 2,
        eventId: 'h2',
      });
      expect(state.item.status).toBe('requested');
    });

    it('shows an Item that needs its user, and leaves its refresh state alone', () => {
      const before = run(requested('r1'), accepted('r1', '2026-11-24T10:00:02.000Z'));
      const after = evolve(before, broke, at('health'));
      expect(after.item.health).toMatchObject({
        status: 'needs_user_action',
        reason: 'ITEM_LOGIN_REQUIRED',
      });
      expect({ ...after.item, health: null, lastEvent: null }).toEqual({
        ...before.item,
        health: null,
        lastEvent: null,
      });
      expect(after.requests).toEqual(before.requests);
    });

    it('keeps the change with the highest sequence, even when a lower one happened later', () => {
      const third = needsAttention('h3', '2026-11-24T10:00:00.000Z', 'ACCESS_NOT_GRANTED', 3);
      const second = restored('h2', '2026-11-24T10:05:00.000Z', 2);
      for (const events of [
        [third, second],
        [second, third],
      ]) {
        expect(run(...events).item.health).toMatchObject({
          status: 'needs_user_action',
          reason: 'ACCESS_NOT_GRANTED',
          sequence: 3,
        });
      }
    });

    it('knows an Item from its health alone, with no refresh status', () => {
      const state = run(broke);
      expect(state.item.status).toBeNull();
      expect(state.item.health?.status).toBe('needs_user_action');
    });
  });

  describe('report fetches', () => {
    const x1 = { id: 'x1', receivedAt: '2026-11-24T10:01:00.000Z' };
    const refreshed = [
      requested('r1', 90, '2026-11-24T10:00:00.000Z'),
      accepted('r1', '2026-11-24T10:00:02.000Z'),
      ready(x1.id, x1.receivedAt),
    ];

    it('gives the Item its fetch and the request its fetched_at', () => {
      const state = run(...refreshed, fetched('f1', '2026-11-24T10:01:30.000Z', x1, ['r1'], 812));
      expect(state.item).toMatchObject({
        status: 'ready',
        lastFetch: {
          fetchId: expect.any(String),
          fetchedAt: '2026-11-24T10:01:30.000Z',
          lastSuccessfulUpdateTime: '2026-11-24T10:01:25.000Z',
          transactionCount: 812,
        },
        lastFetchFailure: null,
      });
      expect(state.requests.get('r1')).toMatchObject({
        status: 'ready',
        fetchedAt: '2026-11-24T10:01:30.000Z',
      });
    });

    it('is the same whether the fetch is read before or after its report, request and outcome', () => {
      const fetch = fetched('f1', '2026-11-24T10:01:30.000Z', x1, ['r1']);
      const last = run(...refreshed, fetch);
      for (const order of [
        [fetch, ...refreshed],
        [refreshed[0]!, fetch, ...refreshed.slice(1)],
        [refreshed[0]!, refreshed[2]!, fetch, refreshed[1]!],
      ]) {
        expect(orderFree(run(...order))).toEqual(orderFree(last));
      }
      // Read first, a fetch gives the Item a row: its request waits for its outcome, or, naming
      // none, the Item is ready as its report would make it.
      expect(run(fetch).item.status).toBe('requested');
      expect(run(fetched('f0', '2026-11-24T10:01:30.000Z', x1)).item).toMatchObject({
        status: 'ready',
        readyAt: x1.receivedAt,
      });
    });

    it('keeps the newest fetch by fetched_at whatever the order, and the earliest per request', () => {
      const early = fetched('f1', '2026-11-24T10:01:30.000Z', x1, ['r1'], 10);
      const late = fetched('f2', '2026-11-24T10:09:00.000Z', x1, ['r1'], 20);
      for (const state of [run(...refreshed, early, late), run(...refreshed, late, early)]) {
        expect(state.item.lastFetch).toMatchObject({
          fetchedAt: '2026-11-24T10:09:00.000Z',
          transactionCount: 20,
        });
        expect(state.requests.get('r1')?.fetchedAt).toBe('2026-11-24T10:01:30.000Z');
      }
      // Two fetches ending at the same instant: the greater fetch id, either way round.
      const twin = fetched('f3', '2026-11-24T10:09:00.000Z', x1, [], 30);
      expect(run(late, twin).item.lastFetch).toEqual(run(twin, late).item.lastFetch);
    });

    it('keeps the newest failure after a later success, and leaves the refresh status alone', () => {
      const failure = fetchFailed('f1', '2026-11-24T10:01:30.000Z', x1, ['r1']);
      const success = fetched('f2', '2026-11-24T10:05:00.000Z', x1);
      const failedOnly = run(...refreshed, failure);
      expect(failedOnly.item).toMatchObject({
        status: 'ready',
        lastError: null,
        lastFetch: null,
        lastFetchFailure: {
          failedAt: '2026-11-24T10:01:30.000Z',
          code: 'ITEM_LOGIN_REQUIRED',
          message: 'the login details of this item have changed',
        },
      });
      expect(failedOnly.requests.get('r1')?.fetchedAt).toBeNull();
      const both = run(...refreshed, success, failure);
      expect(both.item.lastFetchFailure?.failedAt).toBe('2026-11-24T10:01:30.000Z');
      expect(both.item.lastFetch?.fetchedAt).toBe('2026-11-24T10:05:00.000Z');
    });

    it('changes nothing when a fetch is delivered again', () => {
      const fetch = fetched('f1', '2026-11-24T10:01:30.000Z', x1, ['r1']);
      const once = run(...refreshed, fetch);
      const twice = evolve(once, fetch, at('fetches'));
      expect({ ...twice.item, lastEvent: null }).toEqual({ ...once.item, lastEvent: null });
      expect(twice.requests).toEqual(once.requests);
      expect(twice.reports).toEqual(once.reports);
    });
  });

  it('gives each of many refreshes its own report when the reports are read before the outcomes', () => {
    const t = (s: number) => new Date(Date.parse('2026-11-24T10:00:00Z') + s * 1000).toISOString();
    const topics = new Map<string, PositionedEvent[]>();
    const onTopic = (topic: string, event: CashflowEvent) => {
      const list = topics.get(topic) ?? [];
      list.push({ event, position: { topic, partition: 0, offset: String(list.length) } });
      topics.set(topic, list);
    };
    for (let n = 1; n <= 24; n++) {
      const start = n * 120;
      onTopic('requested', requested(`r${n}`, undefined, t(start)));
      onTopic('outcomes', accepted(`r${n}`, t(start + 2)));
      const at = t(start + 60);
      onTopic('reports', n === 4 ? reportFailed(`x${n}`, at) : ready(`x${n}`, at));
    }
    // A catch-up reads the reports topic far ahead of the outcomes.
    const { requested: r, outcomes: o, reports: x } = Object.fromEntries(topics);
    const caughtUp = fold([...r!, ...x!, ...o!]);
    const state = caughtUp.get(item)!;
    for (let n = 1; n <= 24; n++) {
      expect(state.requests.get(`r${n}`)).toMatchObject(
        n === 4
          ? { status: 'report_failed', failedAt: t(n * 120 + 60), reportEventId: 'x4' }
          : { status: 'ready', readyAt: t(n * 120 + 60), reportEventId: `x${n}` },
      );
    }
    expect(state.item.refreshes).toBe(23);
    expect(comparable(caughtUp)).toEqual(comparable(fold(inTimeOrder(topics))));
  });

  it('reaches the same state however the topics interleave and whatever is delivered twice', () => {
    fc.assert(
      fc.property(historyPlan, interleaving, (plan, { choices, duplicates, readFirst }) => {
        const topics = historyEvents(plan);
        const expected = comparable(fold(topicByTopic(topics)));
        expect(comparable(fold(interleave(topics, choices, duplicates, readFirst)))).toEqual(
          expected,
        );
        expect(comparable(fold(inTimeOrder(topics)))).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('reaches the same state for long histories with a topic read far ahead of the others', () => {
    fc.assert(
      fc.property(longHistoryPlan, interleaving, (plan, { choices, duplicates, readFirst }) => {
        const topics = historyEvents(plan);
        const expected = comparable(fold(inTimeOrder(topics)));
        expect(comparable(fold(topicByTopic(topics)))).toEqual(expected);
        expect(comparable(fold(interleave(topics, choices, duplicates, readFirst)))).toEqual(
          expected,
        );
      }),
      { numRuns: 200 },
    );
  });
});
