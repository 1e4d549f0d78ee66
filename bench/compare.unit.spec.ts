import { better, changeTable, compare, figures } from './compare';

describe('bench comparison', () => {
  it('names every figure by its path, rows of a table by their own names, and skips descriptions', () => {
    const found = figures({
      date: '2026-12-04',
      machine: { cpus: 2 },
      projector: { catch_up: { events_per_s: 100, peak_rss_mb: 250 } },
      ingress: {
        runs: [
          { target: 'nest', mode: 'flat-out', webhooks_per_s: 900 },
          { target: 'bare', mode: 'flat-out', webhooks_per_s: 1000 },
        ],
      },
      rounds: {
        runs: [
          { round: 1, target: 'bare', mode: 'flat-out', webhooks_per_s: 1010 },
          { round: 2, target: 'bare', mode: 'flat-out', webhooks_per_s: 990 },
        ],
      },
      soak: { samples: Array.from({ length: 50 }, (_, i) => ({ at: i })) },
    });
    expect([...found]).toEqual([
      ['projector.catch_up.events_per_s', 100],
      ['projector.catch_up.peak_rss_mb', 250],
      ['ingress.runs[nest flat-out].webhooks_per_s', 900],
      ['ingress.runs[bare flat-out].webhooks_per_s', 1000],
      ['rounds.runs[bare flat-out 1].webhooks_per_s', 1010],
      ['rounds.runs[bare flat-out 2].webhooks_per_s', 990],
    ]);
  });

  it.each([
    ['projector.catch_up.events_per_s', 'higher'],
    ['webhook-ingress.share_of_bare_pct', 'higher'],
    ['webhook-ingress.flat_out_mean.ingress_webhooks_per_s', 'higher'],
    ['webhook-ingress.p99_at_fixed_rate_mean_ms.ingress', 'lower'],
    ['refresh-worker.ratio', 'higher'],
    ['refresh-worker.rate_limited.share_of_allowed_rate', 'higher'],
    ['projector.lag.p99_ms', 'lower'],
    ['refresh-worker.throughput.worker_cpu_s', undefined],
    ['projector.catch_up.peak_rss_mb', 'lower'],
    ['projector.catch_up.seconds', 'lower'],
    ['soak.lag.worker_max', 'lower'],
    ['webhook-ingress.runs[nest flat-out].lost', 'lower'],
    ['refresh-worker.rate_limited.rate_limited_429', 'lower'],
    ['webhook-ingress.runs[ingress flat-out].cpu_s_per_1000_webhooks', 'lower'],
    ['refresh-worker.throughput.cpu_s_per_1000_outcomes', 'lower'],
    ['report-fetcher.fetch.per_fetch_ms.pages_mean', 'lower'],
    ['soak.rss.projector.max_mb', 'lower'],
    ['projector.lag.rate', undefined],
    ['projector.lag.events', undefined],
    ['webhook-ingress.runs[ingress flat-out].cpu_s', undefined],
    ['webhook-ingress.duration_s', 'lower'],
    ['soak.rss.projector.slope_mb_per_min', undefined],
    ['refresh-worker.rate_limited.plaid_calls', undefined],
    ['projector.catch_up.events', undefined],
  ])('%s: %s is better', (path, direction) => {
    expect(better(path)).toBe(direction);
  });

  it('flags a figure worse by more than 15% either way round, and a loss appearing from zero', () => {
    const before = {
      p: { events_per_s: 1000, peak_rss_mb: 200, p99_ms: 40, lost: 0, events: 10 },
    };
    const after = {
      p: { events_per_s: 840, peak_rss_mb: 240, p99_ms: 45, lost: 3, events: 1 },
    };
    const flagged = compare(before, after)
      .filter((c) => c.flagged)
      .map((c) => c.figure);
    // events/s -16%, RSS +20%, lost 0 -> 3; p99 +12.5% is noise; events is a count.
    expect(flagged).toEqual(['p.events_per_s', 'p.peak_rss_mb', 'p.lost']);
  });

  it('flags an RSS slope only once it rose above 1 MiB a minute', () => {
    const flagged = (before: number, after: number) =>
      compare(
        { rss: { a: { slope_mb_per_min: before } } },
        { rss: { a: { slope_mb_per_min: after } } },
      )[0]!.flagged;
    expect(flagged(0.01, 0.5)).toBe(false);
    expect(flagged(0.2, 1.5)).toBe(true);
    expect(flagged(3, 2)).toBe(false);
  });

  it('does not flag improvements, and leaves out figures only one run has', () => {
    const changes = compare(
      { p: { events_per_s: 1000, cpu_s_per_1000: 10, old_only: 1 } },
      { p: { events_per_s: 2000, cpu_s_per_1000: 5, new_only: 1 } },
    );
    expect(changes.map((c) => [c.figure, c.change, c.flagged])).toEqual([
      ['p.events_per_s', 1, false],
      ['p.cpu_s_per_1000', -0.5, false],
    ]);
    expect(changeTable(changes)).toContain('| p.events_per_s | 1000 | 2000 | +100.0% |  |');
    expect(changeTable(changes)).toContain('0 of 2 figures worse by more than 15%');
  });
});
