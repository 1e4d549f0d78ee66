import type { CashflowEvent } from '@cashflow/contracts';
import fc from 'fast-check';
import {
  eventsFor,
  historyEvents,
  historyPlan,
  interleave,
  interleaving,
  topicByTopic,
} from '../../../../test/support/refresh-histories';
import { foldEvents as fold } from './fold';
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
const { requested, accepted, failed, ready, reportFailed, otherWebhook } = eventsFor(item);

function run(...events: CashflowEvent[]): ItemProjection {
  let state = initialItem(item);
  for (const event of events) {
    const topic =
      event.type === 'RefreshRequested'
        ? 'requested'
        : event.type.startsWith('Refresh')
          ? 'outcomes'
          : 'reports';
    state = evolve(state, event, at(topic));
  }
  return state;
}

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
    expect(again.item.recentReports).toEqual(once.item.recentReports);
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

  it('leaves refresh state alone for other webhook codes', () => {
    const before = run(requested('r1'));
    const other = otherWebhook('w1', '2026-11-24T10:00:05Z');
    expect(evolve(before, other, at('webhooks'))).toBe(before);
  });

  it('reaches the same state however the topics interleave and whatever is delivered twice', () => {
    fc.assert(
      fc.property(historyPlan, interleaving, (plan, { choices, duplicates }) => {
        const topics = historyEvents(plan);
        const expected = comparable(fold(topicByTopic(topics)));
        const actual = comparable(fold(interleave(topics, choices, duplicates)));
        expect(actual).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });
});
