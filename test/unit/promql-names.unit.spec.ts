import { metricNamesIn } from '../support/ops';

describe('metric names in a PromQL expression', () => {
  it('finds the metrics under functions, aggregations and binary operators', () => {
    expect(
      metricNamesIn(
        'sum by (job) (rate(a_total{outcome="unavailable"}[2m])) / sum by (job) (rate(b_total[2m])) > 0.01',
      ),
    ).toEqual(['a_total', 'b_total']);
  });

  it('leaves out label names, label values, keywords, numbers and durations', () => {
    const expr = `sum by (job, group) (increase(joins_total{group=~"worker|fetcher"}[15m])) > 1
      unless on (job) (max by (job) (start_seconds offset 1h) > time() - 9e2)
      and on () (sum(up{job="projector"}) > 0)`;
    expect(metricNamesIn(expr)).toEqual(['joins_total', 'start_seconds', 'up']);
  });

  it('reads Grafana queries with their variables', () => {
    const expr =
      'histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket{stage="to_ready",job=~"$job"}[$__rate_interval])))';
    expect(metricNamesIn(expr)).toEqual(['x_seconds_bucket']);
  });

  it('refuses what it cannot read rather than miss a name', () => {
    expect(() => metricNamesIn('{__name__=~"refresh_.*"}')).toThrow(/cannot read/);
  });
});
