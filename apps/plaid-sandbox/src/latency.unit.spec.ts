import { LatencySpecError, parseLatency, sampleLatency } from './latency';
import { SlidingWindowLimiter } from './rate-limiter';
import { seededRandom } from './report-data/random';

describe('refresh latency', () => {
  it('parses the three forms', () => {
    expect(parseLatency('fixed:250')).toEqual({ kind: 'fixed', ms: 250 });
    expect(parseLatency('uniform:100-900')).toEqual({ kind: 'uniform', min: 100, max: 900 });
    expect(parseLatency('lognormal:median=3000,p99=25000')).toEqual({
      kind: 'lognormal',
      median: 3000,
      p99: 25000,
    });
  });

  it.each([
    'gaussian:5',
    'fixed:-1',
    'fixed:',
    'uniform:9-1',
    'lognormal:median=5',
    'lognormal:median=10,p99=5',
  ])('rejects %s with a reason', (spec) => {
    expect(() => parseLatency(spec)).toThrow(LatencySpecError);
  });

  it('draws a lognormal whose median and 99th percentile land where asked', () => {
    const random = seededRandom(42);
    const draws = Array.from({ length: 20_000 }, () =>
      sampleLatency(parseLatency('lognormal:median=3000,p99=25000'), random),
    ).sort((a, b) => a - b);
    const at = (q: number) => draws[Math.floor(q * draws.length)]!;
    expect(at(0.5)).toBeGreaterThan(2700);
    expect(at(0.5)).toBeLessThan(3300);
    expect(at(0.99)).toBeGreaterThan(21000);
    expect(at(0.99)).toBeLessThan(29000);
  });
});

describe('SlidingWindowLimiter', () => {
  it('admits `limit` calls per key in any window; rejected calls do not count', () => {
    const limiter = new SlidingWindowLimiter(2, 1000);
    const tryAt = (key: string, t: number) =>
      limiter.allows(key, t) ? (limiter.admit(key, t), true) : false;
    expect([tryAt('a', 0), tryAt('a', 10), tryAt('a', 20), tryAt('b', 20)]).toEqual([
      true,
      true,
      false,
      true,
    ]);
    expect(tryAt('a', 999)).toBe(false);
    expect(tryAt('a', 1000)).toBe(true);
    expect(tryAt('a', 1005)).toBe(false);
    expect(tryAt('a', 1010)).toBe(true);
  });
});
