import { histogramQuantiles } from './histogram';

const page = `# HELP plaid_refresh_call_seconds Plaid refresh calls.
# TYPE plaid_refresh_call_seconds histogram
plaid_refresh_call_seconds_bucket{le="1",outcome="accepted"} 10
plaid_refresh_call_seconds_bucket{le="5",outcome="accepted"} 80
plaid_refresh_call_seconds_bucket{le="30",outcome="accepted"} 97
plaid_refresh_call_seconds_bucket{le="+Inf",outcome="accepted"} 98
plaid_refresh_call_seconds_bucket{le="1",outcome="failed"} 0
plaid_refresh_call_seconds_bucket{le="5",outcome="failed"} 0
plaid_refresh_call_seconds_bucket{le="30",outcome="failed"} 1
plaid_refresh_call_seconds_bucket{le="+Inf",outcome="failed"} 2
plaid_refresh_call_seconds_sum{outcome="accepted"} 400
plaid_refresh_call_seconds_count{outcome="accepted"} 98
other_seconds_bucket{le="1"} 1000
`;

describe('histogramQuantiles', () => {
  it('sums the series over their labels and names the bucket each quantile falls in', () => {
    expect(histogramQuantiles(page, 'plaid_refresh_call_seconds', [0.5, 0.9, 0.98, 0.99])).toEqual({
      count: 100,
      at_most_s: { p50: 5, p90: 30, p98: 30, p99: Infinity },
    });
  });

  it('has nothing to say of a histogram without observations, or absent', () => {
    expect(
      histogramQuantiles(page.replace(/ \d+$/gm, ' 0'), 'plaid_refresh_call_seconds', [0.5]),
    ).toBe(undefined);
    expect(histogramQuantiles(page, 'missing_seconds', [0.5])).toBe(undefined);
  });
});
