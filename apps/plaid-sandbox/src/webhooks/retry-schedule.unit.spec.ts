import { nextRetryDelay, parseRetryAfter, plaidRetryPolicy } from './retry-schedule';

describe("Plaid's webhook retry schedule", () => {
  const policy = plaidRetryPolicy(1);
  const MIN = 60_000;

  it('waits 30 s, then 4x longer each time, until 24 h have passed', () => {
    let elapsed = 0;
    const delays: number[] = [];
    for (let attempt = 1; ; attempt++) {
      const delay = nextRetryDelay(policy, attempt, elapsed);
      if (delay === null) break;
      delays.push(delay);
      elapsed += delay;
    }
    expect(delays).toEqual([0.5 * MIN, 2 * MIN, 8 * MIN, 32 * MIN, 128 * MIN, 512 * MIN]);
  });

  it('honours Retry-After up to 4 h', () => {
    expect(nextRetryDelay(policy, 1, 0, 90_000)).toBe(90_000);
    expect(nextRetryDelay(policy, 1, 0, 10 * 3600_000)).toBe(4 * 3600_000);
    expect(nextRetryDelay(policy, 1, 23 * 3600_000, 2 * 3600_000)).toBeNull();
  });

  it('scales every duration', () => {
    expect(plaidRetryPolicy(0.001)).toEqual({
      timeoutMs: 10,
      firstDelayMs: 30,
      factor: 4,
      giveUpAfterMs: 86_400,
      maxRetryAfterMs: 14_400,
    });
  });

  it('gives up at a give-up time set as is, retries still scaled', () => {
    const policy = plaidRetryPolicy(0.1, undefined, 8000);
    expect(policy).toMatchObject({ firstDelayMs: 3000, giveUpAfterMs: 8000 });
    expect(nextRetryDelay(policy, 1, 0)).toBe(3000);
    expect(nextRetryDelay(policy, 2, 3000)).toBeNull();
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-11-24T10:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Tue, 24 Nov 2026 10:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
