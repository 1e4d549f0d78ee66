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
});
