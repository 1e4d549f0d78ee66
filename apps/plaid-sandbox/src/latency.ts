/**
 * Refresh latency as a distribution, written `fixed:MS`, `uniform:MIN-MAX` or
 * `lognormal:median=MS,p99=MS`. Plaid documents "typically less than 10 seconds, but up to 30
 * seconds or more"; the default lognormal(median 3 s, p99 25 s) has that shape.
 */
export type LatencyDistribution =
  | { readonly kind: 'fixed'; readonly ms: number }
  | { readonly kind: 'uniform'; readonly min: number; readonly max: number }
  | { readonly kind: 'lognormal'; readonly median: number; readonly p99: number };

export class LatencySpecError extends Error {}

export function parseLatency(spec: string): LatencyDistribution {
  const [kind, args = ''] = spec.split(':', 2);
  const num = (s: string | undefined) => {
    const n = Number(s);
    if (s === undefined || s === '' || !Number.isFinite(n) || n < 0) {
      throw new LatencySpecError(
        `"${spec}": ${s ?? '(missing)'} is not a non-negative number of ms`,
      );
    }
    return n;
  };
  switch (kind) {
    case 'fixed':
      return { kind, ms: num(args) };
    case 'uniform': {
      const [min, max] = args.split('-').map(num) as [number, number];
      if (max < min) throw new LatencySpecError(`"${spec}": max below min`);
      return { kind, min, max };
    }
    case 'lognormal': {
      const params = Object.fromEntries(
        args.split(',').map((p) => p.split('=') as [string, string]),
      );
      const median = num(params.median);
      const p99 = num(params.p99);
      if (median <= 0 || p99 < median)
        throw new LatencySpecError(`"${spec}": need 0 < median <= p99`);
      return { kind, median, p99 };
    }
    default:
      throw new LatencySpecError(
        `"${spec}": use fixed:MS, uniform:MIN-MAX or lognormal:median=MS,p99=MS`,
      );
  }
}

const Z_99 = 2.3263478740408408;

/** Draws one latency in ms; `random` returns numbers in [0, 1). */
export function sampleLatency(d: LatencyDistribution, random: () => number = Math.random): number {
  switch (d.kind) {
    case 'fixed':
      return d.ms;
    case 'uniform':
      return d.min + (d.max - d.min) * random();
    case 'lognormal': {
      // Box-Muller for a standard normal, then scale so the 99th percentile lands on p99.
      const u = 1 - random();
      const v = random();
      const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
      const sigma = Math.log(d.p99 / d.median) / Z_99;
      return d.median * Math.exp(sigma * z);
    }
  }
}
