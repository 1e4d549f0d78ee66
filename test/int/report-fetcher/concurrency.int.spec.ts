import { fetcherWorld, type FetcherWorld } from '../../support/report-fetcher';

/**
 * Two fetchers in one group, many Items, reports arriving while fetches run: one fetch per Item
 * at a time across processes, and every report's data stored once.
 */
let world: FetcherWorld;

beforeAll(async () => {
  world = await fetcherWorld();
  await world.startFetcher({ REPORT_FETCH_PAGE_SIZE: '25', REPORT_FETCH_CONCURRENCY: '4' });
  await world.startFetcher({ REPORT_FETCH_PAGE_SIZE: '25', REPORT_FETCH_CONCURRENCY: '4' });
});

afterAll(() => world?.close());

it('never runs two fetches of one Item at once, and reports arriving meanwhile make at most one more', async () => {
  const items = await Promise.all(
    Array.from({ length: 12 }, () =>
      world.item({ transactions_per_account: 60, get_behaviour: { latency_ms: 20_000 } }),
    ),
  );
  let clock = Date.now();
  // Two refreshes per Item, 30 s apart in event time, each report sent three times.
  for (let round = 0; round < 2; round++) {
    clock += 30_000;
    for (const { itemId } of items) {
      if (round === 1) {
        await world.sandbox.admin('POST', `/items/${encodeURIComponent(itemId)}/advance`, {});
      }
      await world.accepted(itemId, 365, new Date(clock));
    }
    for (const { itemId } of items) {
      for (let copy = 0; copy < 3; copy++) {
        await world.reportReady(itemId, new Date(clock + 2_000 + copy));
      }
    }
  }
  await world.settled(120_000);

  const fetches: {
    item_id: string;
    started_at: Date;
    finished_at: Date;
    outcome: string;
  }[] = await world.db.query(
    `SELECT item_id, started_at, finished_at, outcome FROM report_fetches
      WHERE item_id = ANY($1) ORDER BY item_id, started_at`,
    [items.map((i) => i.itemId)],
  );
  expect(fetches.every((f) => f.outcome === 'fetched')).toBe(true);
  for (const { itemId, accessToken } of items) {
    const mine = fetches.filter((f) => f.item_id === itemId);
    // At least one fetch per refresh round reached the last one's data; at most one more each.
    expect(mine.length).toBeGreaterThanOrEqual(1);
    expect(mine.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < mine.length; i++) {
      expect(mine[i]!.started_at.getTime()).toBeGreaterThanOrEqual(
        mine[i - 1]!.finished_at.getTime(),
      );
    }
    const served = await world.served(accessToken, 365);
    const stored = await world.stored(itemId);
    expect([...stored.keys()].sort()).toEqual([...served.keys()].sort());
  }
  const perReport = new Map<string, number>();
  for (const e of world.allFetchEvents()) {
    perReport.set(e.data.report_event_id, (perReport.get(e.data.report_event_id) ?? 0) + 1);
  }
  expect([...perReport.values()].every((n) => n === 1)).toBe(true);
}, 180_000);
