/**
 * Quantiles of a Prometheus histogram read from a /metrics page: the cumulative `_bucket`
 * series summed over their labels, and for each quantile the upper bound of the first bucket
 * holding it (what the histogram can tell: "at most this"). Undefined without observations;
 * Infinity when the quantile lies past the last finite bucket.
 */
export function histogramQuantiles(
  metricsText: string,
  name: string,
  quantiles: readonly number[],
): { count: number; at_most_s: Record<string, number> } | undefined {
  const pattern = new RegExp(`^${name}_bucket\\{([^}]*)\\}\\s+(\\S+)`, 'gm');
  const byBound = new Map<number, number>();
  for (const match of metricsText.matchAll(pattern)) {
    const le = /(?:^|,)le="([^"]+)"/.exec(match[1] ?? '')?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    byBound.set(bound, (byBound.get(bound) ?? 0) + Number(match[2]));
  }
  const buckets = [...byBound].sort((a, b) => a[0] - b[0]);
  const count = buckets.at(-1)?.[1] ?? 0;
  if (count === 0) return undefined;
  const atMost: Record<string, number> = {};
  for (const q of quantiles) {
    atMost[`p${Math.round(q * 100)}`] = buckets.find(([, n]) => n >= q * count)![0];
  }
  return { count, at_most_s: atMost };
}
