import { emptyRequest, type RequestState } from '../rules/refresh-projection';
import { newTimings } from './request-timings';

const request = (times: Partial<RequestState> = {}): RequestState => ({
  ...emptyRequest('req-1', 'item-1'),
  ...times,
});

const requestedAt = '2026-12-01T10:00:00.000Z';
const acceptedAt = '2026-12-01T10:00:02.500Z';
const readyAt = '2026-12-01T10:01:02.500Z';

describe('request timings', () => {
  it('times nothing for a request alone', () => {
    expect(newTimings(undefined, request({ requestedAt }))).toEqual({
      toAccept: null,
      toReady: null,
    });
  });

  it('times the acceptance when it is applied after the request', () => {
    const before = request({ requestedAt });
    const after = request({ requestedAt, acceptedAt, status: 'accepted' });
    expect(newTimings(before, after)).toEqual({ toAccept: 2.5, toReady: null });
  });

  it('times the acceptance when the request is read after it', () => {
    const before = request({ acceptedAt, status: 'accepted' });
    const after = request({ requestedAt, acceptedAt, status: 'accepted' });
    expect(newTimings(before, after)).toEqual({ toAccept: 2.5, toReady: null });
  });

  it('times both steps when one batch brings the whole story', () => {
    const after = request({ requestedAt, acceptedAt, readyAt, status: 'ready' });
    expect(newTimings(undefined, after)).toEqual({ toAccept: 2.5, toReady: 60 });
  });

  it('does not time a request again when an earlier report takes over', () => {
    const before = request({ requestedAt, acceptedAt, readyAt, status: 'ready' });
    const after = { ...before, readyAt: '2026-12-01T10:00:30.000Z' };
    expect(newTimings(before, after)).toEqual({ toAccept: null, toReady: null });
  });

  it('counts a report received just before the acceptance it answers as 0 s', () => {
    const before = request({ requestedAt, acceptedAt, status: 'accepted' });
    const after = { ...before, status: 'ready' as const, readyAt: '2026-12-01T10:00:02.000Z' };
    expect(newTimings(before, after)).toEqual({ toAccept: null, toReady: 0 });
  });
});
