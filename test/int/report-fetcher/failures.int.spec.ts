import { fetcherWorld, type FetcherWorld } from '../../support/report-fetcher';
import { waitFor } from '../../support/wait-for';

/**
 * The fetcher when Plaid or the fetcher itself misbehaves: data changing during pagination,
 * Item errors, errors that pass, a fetcher stopped in the middle of paging, and `report fetch`.
 */
let world: FetcherWorld;
let url: string;

beforeAll(async () => {
  world = await fetcherWorld();
  ({ url } = await world.startFetcher({ REPORT_FETCH_PAGE_SIZE: '50' }));
});

afterAll(() => world?.close());

const itemPath = (itemId: string) => `/items/${encodeURIComponent(itemId)}`;

async function sandboxItem(itemId: string): Promise<Record<string, unknown>> {
  return (await world.sandbox.admin('GET', itemPath(itemId))).body.item as Record<string, unknown>;
}

async function expectStoredEqualsServed(itemId: string, accessToken: string, days: number) {
  const served = await world.served(accessToken, days);
  const stored = await world.stored(itemId);
  expect([...stored.keys()].sort()).toEqual([...served.keys()].sort());
  for (const [id, transaction] of served) expect(stored.get(id)).toEqual(transaction);
}

describe('report fetcher: when things go wrong', () => {
  it('starts paging over when the data changes during pagination, and stores only the final pass', async () => {
    const { itemId, accessToken } = await world.item({
      transactions_per_account: 100,
      get_behaviour: { mutate_during_pagination: 1 },
    });
    await world.accepted(itemId, 730);
    await world.reportReady(itemId);
    const [event] = await world.untilFetches(itemId);
    if (event?.type !== 'ReportFetched') throw new Error(`expected ReportFetched: ${event?.type}`);
    expect(event.data.restarts).toBe(1);
    expect((await sandboxItem(itemId)).generation).toBe(1);
    expect(event.data.last_successful_update_time).toBe(
      new Date((await sandboxItem(itemId)).last_successful_update_time as string).toISOString(),
    );
    await expectStoredEqualsServed(itemId, accessToken, 730);
    // Only the final pass counts: every stored transaction was added once.
    expect(event.data.added).toBe(event.data.transactions);
  });

  it('answers an Item error with ReportFetchFailed at once, leaving the stored data as it was', async () => {
    const { itemId } = await world.item({
      transactions_per_account: 20,
      get_behaviour: { errors: { error_code: 'ITEM_LOGIN_REQUIRED', count: 1 } },
    });
    const requestId = await world.accepted(itemId, 365);
    await world.reportReady(itemId);
    const [event] = await world.untilFetches(itemId);
    if (event?.type !== 'ReportFetchFailed') throw new Error(`expected a failure: ${event?.type}`);
    expect(event.data).toMatchObject({
      error: { source: 'plaid', error_type: 'ITEM_ERROR', error_code: 'ITEM_LOGIN_REQUIRED' },
      retryable: false,
      attempts: 1,
      refresh_request_ids: [requestId],
    });
    expect((await world.stored(itemId)).size).toBe(0);
    await world.settled();
    expect(world.fetchEventsOf(itemId)).toHaveLength(1);
  });

  it('waits and tries again after errors that pass, then stores the report', async () => {
    const { itemId, accessToken } = await world.item({
      transactions_per_account: 30,
      get_behaviour: { errors: { error_code: 'INTERNAL_SERVER_ERROR', count: 2 } },
    });
    await world.accepted(itemId, 365);
    await world.reportReady(itemId);
    const [event] = await world.untilFetches(itemId);
    expect(event?.type).toBe('ReportFetched');
    const rows: { attempts: number }[] = await world.db.query(
      'SELECT attempts FROM report_fetches WHERE item_id = $1',
      [itemId],
    );
    expect(rows).toEqual([{ attempts: 3 }]);
    await expectStoredEqualsServed(itemId, accessToken, 365);
  });

  it('report fetch: fetches the latest report again now; refuses an Item without a report and a caller without a token', async () => {
    const { itemId, accessToken } = await world.item({ transactions_per_account: 20 });
    await world.accepted(itemId, 200);
    const reportId = await world.reportReady(itemId);
    await world.untilFetches(itemId);
    await world.sandbox.admin('POST', `${itemPath(itemId)}/advance`, { generations: 1 });

    const auth = { authorization: `Bearer ${world.adminToken}` };
    const asked = await fetch(`${url}${itemPath(itemId)}/report-fetch`, {
      method: 'POST',
      headers: auth,
    });
    expect(asked.status).toBe(202);
    expect(await asked.json()).toMatchObject({
      item_id: itemId,
      report_event_id: reportId,
      days_requested: 200,
    });
    const events = await world.untilFetches(itemId, 2);
    expect(events[1]?.type).toBe('ReportFetched');
    await expectStoredEqualsServed(itemId, accessToken, 200);

    const unknown = await fetch(`${url}/items/no-such-item/report-fetch`, {
      method: 'POST',
      headers: auth,
    });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'NO_REPORT' } });
    const anonymous = await fetch(`${url}${itemPath(itemId)}/report-fetch`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
  });
});

describe('report fetcher: stopped in the middle of paging', () => {
  let second: FetcherWorld;

  beforeAll(async () => {
    second = await fetcherWorld();
  });
  afterAll(() => second?.close());

  it('leaves nothing half-written, and the next fetcher stores the whole report once', async () => {
    const first = await second.startFetcher({
      REPORT_FETCH_PAGE_SIZE: '20',
      SHUTDOWN_GRACE_MS: '0',
    });
    const { itemId, accessToken } = await second.item({
      transactions_per_account: 100,
      // 10 pages, each 300 ms late: the fetch is surely under way when its fetcher stops.
      get_behaviour: { latency_ms: 300_000 },
    });
    await second.accepted(itemId, 730);
    await second.reportReady(itemId);
    await waitFor('the fetch under way', async () =>
      Number((await sandboxItemIn(second, itemId)).get_calls) >= 2 ? true : undefined,
    );
    await first.app.close();
    expect((await second.stored(itemId)).size).toBe(0);
    expect(second.fetchEventsOf(itemId)).toEqual([]);

    await second.sandbox.admin('PUT', `${itemPath(itemId)}/get_behaviour`, {});
    await second.startFetcher({ REPORT_FETCH_PAGE_SIZE: '20' });
    const [event] = await second.untilFetches(itemId, 1, 60_000);
    expect(event?.type).toBe('ReportFetched');
    const served = await second.served(accessToken, 730);
    const stored = await second.stored(itemId);
    expect([...stored.keys()].sort()).toEqual([...served.keys()].sort());
    await second.settled();
    expect(second.fetchEventsOf(itemId)).toHaveLength(1);
  }, 120_000);
});

async function sandboxItemIn(w: FetcherWorld, itemId: string): Promise<Record<string, unknown>> {
  return (await w.sandbox.admin('GET', itemPath(itemId))).body.item as Record<string, unknown>;
}
