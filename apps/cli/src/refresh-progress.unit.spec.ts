import { eventsFor } from '../../../test/support/refresh-histories';
import { progressOf } from './refresh-progress';

describe('refresh --wait progress', () => {
  const e = eventsFor('item-w');
  const other = eventsFor('item-other');

  it('has nothing to show before the outcome', () => {
    expect(progressOf([e.ready('x0', '2026-11-24T10:00:05Z')], 'r1', 'item-w')).toEqual({
      steps: [],
    });
  });

  it('ends at a RefreshFailed', () => {
    const progress = progressOf([e.failed('r1', '2026-11-24T10:00:01Z')], 'r1', 'item-w');
    expect(progress.final).toBe('failed');
    expect(progress.steps).toMatchObject([
      { step: 'failed', detail: { error_code: 'ITEM_LOGIN_REQUIRED' } },
    ]);
  });

  it("waits after the acceptance for a report of the Item that answers it, by the projection's rule", () => {
    const seen = [
      e.ready('x0', '2026-11-24T09:00:00Z'),
      other.ready('y1', '2026-11-24T10:00:30Z'),
      e.accepted('r1', '2026-11-24T10:00:02Z'),
    ];
    expect(progressOf(seen, 'r1', 'item-w')).toMatchObject({
      steps: [{ step: 'accepted' }],
    });
    // A report received just before the acceptance answers it (clock tolerance).
    const answered = progressOf(
      [...seen, e.ready('x1', '2026-11-24T10:00:01.500Z')],
      'r1',
      'item-w',
    );
    expect(answered.final).toBe('ready');
    expect(answered.steps[1]).toMatchObject({ step: 'ready', detail: { report_event_id: 'x1' } });
  });

  it('ends at a ReportOverdue naming the request when no report answers it', () => {
    const accepted = e.accepted('r1', '2026-11-24T10:00:02Z');
    const overdue = e.overdue('o1', '2026-11-24T16:00:02.000Z', ['r1', 'r0']);
    expect(
      progressOf([accepted, e.overdue('o0', '2026-11-24T16:00:00Z', ['r9'])], 'r1', 'item-w'),
    ).toMatchObject({ steps: [{ step: 'accepted' }] });
    const progress = progressOf([accepted, overdue], 'r1', 'item-w');
    expect(progress.final).toBe('failed');
    expect(progress.steps[1]).toMatchObject({
      step: 'overdue',
      at: '2026-11-24T16:00:02.000Z',
      detail: { polls: 4 },
    });
  });

  it('ends ready at a report found by polling, and says so', () => {
    const seen = [
      e.accepted('r1', '2026-11-24T10:00:02Z'),
      e.readyByPolling('p1', '2026-11-24T10:00:09.000Z', ['r1']),
    ];
    const progress = progressOf(seen, 'r1', 'item-w');
    expect(progress.final).toBe('ready');
    expect(progress.steps[1]).toMatchObject({ step: 'ready', detail: { found_by: 'polling' } });
  });

  it('takes the earliest report received, whatever order the reports were read in', () => {
    const progress = progressOf(
      [
        e.accepted('r1', '2026-11-24T10:00:02Z'),
        e.ready('x2', '2026-11-24T10:01:00Z'),
        e.reportFailed('x1', '2026-11-24T10:00:30Z'),
      ],
      'r1',
      'item-w',
    );
    expect(progress.final).toBe('failed');
    expect(progress.steps[1]).toMatchObject({ step: 'failed', at: '2026-11-24T10:00:30Z' });
  });

  describe('until fetched', () => {
    const report = { id: 'x1', receivedAt: '2026-11-24T10:01:00.000Z' };
    const refreshed = [
      e.accepted('r1', '2026-11-24T10:00:02Z'),
      e.ready(report.id, report.receivedAt),
    ];

    it('waits after the report for a fetch naming the request, then ends at fetched', () => {
      expect(progressOf(refreshed, 'r1', 'item-w', 'fetched')).toEqual({
        steps: [
          expect.objectContaining({ step: 'accepted' }),
          expect.objectContaining({ step: 'ready' }),
        ],
      });
      const others = [
        e.fetched('f0', '2026-11-24T10:01:20.000Z', report, ['r0']),
        other.fetched('f9', '2026-11-24T10:01:20.000Z', report, ['r1']),
      ];
      expect(
        progressOf([...refreshed, ...others], 'r1', 'item-w', 'fetched').final,
      ).toBeUndefined();
      const fetched = e.fetched('f1', '2026-11-24T10:01:30.000Z', report, ['r0', 'r1'], 812);
      const progress = progressOf([fetched, ...refreshed, ...others], 'r1', 'item-w', 'fetched');
      expect(progress.final).toBe('fetched');
      expect(progress.steps[2]).toEqual({
        step: 'fetched',
        at: '2026-11-24T10:01:30.000Z',
        detail: {
          fetch_id: fetched.data.fetch_id,
          transactions: 812,
          added: 812,
          modified: 0,
          removed: 0,
          last_successful_update_time: '2026-11-24T10:01:25.000Z',
        },
      });
      // Until ready, the fetch is not waited for.
      expect(progressOf(refreshed, 'r1', 'item-w').final).toBe('ready');
    });

    it('fails on a ReportFetchFailed naming the request', () => {
      const progress = progressOf(
        [...refreshed, e.fetchFailed('f1', '2026-11-24T10:03:00.000Z', report, ['r1'])],
        'r1',
        'item-w',
        'fetched',
      );
      expect(progress.final).toBe('failed');
      expect(progress.steps[2]).toMatchObject({
        step: 'fetch_failed',
        detail: { error_code: 'ITEM_LOGIN_REQUIRED', retryable: false },
      });
    });
  });
});
