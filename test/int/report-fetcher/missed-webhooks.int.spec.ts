import { decodeEvent, topicName, type ReportOverdue, type ReportReady } from '@cashflow/contracts';
import { setTimeout as sleep } from 'node:timers/promises';
import { collect } from '../../support/kafka';
import { fetcherWorld, type FetcherWorld } from '../../support/report-fetcher';

/**
 * When Plaid's webhook never comes (rule 9 of apps/report-fetcher/src/fetch/item-fetches.ts):
 * the fetcher polls /cashflow_report/get for an overdue refresh, publishes a ReportReady found
 * by polling when the data is there and fetches it once, or ReportOverdue when it never is.
 * Times are short here: overdue after 1.5 s, given up after 6 s, polls from 300 ms apart.
 */
let world: FetcherWorld;
let outcomes: Awaited<ReturnType<typeof collect>>;

const POLLING = {
  REPORT_OVERDUE_AFTER_MS: '1500',
  REPORT_GIVE_UP_AFTER_MS: '6000',
  REPORT_POLL_BACKOFF_BASE_MS: '300',
  REPORT_POLL_BACKOFF_MAX_MS: '1000',
  PLAID_RATE_LIMIT_PER_ITEM: '100',
  PLAID_RATE_LIMIT_WINDOW_MS: '1000',
};

const SETTINGS = { ...POLLING, REPORT_FETCH_PAGE_SIZE: '100' };
let fetcher: Awaited<ReturnType<FetcherWorld['startFetcher']>>;

beforeAll(async () => {
  world = await fetcherWorld();
  outcomes = await collect(world.kafka, [topicName('reportOutcomes', world.prefix)]);
  fetcher = await world.startFetcher(SETTINGS);
});

afterAll(async () => {
  await outcomes?.stop();
  await world?.close();
});

type Outcome = ReportReady | ReportOverdue;

function outcomesOf(itemId: string): Outcome[] {
  return outcomes.received.flatMap((r) => {
    const decoded = decodeEvent(r.message);
    if (!decoded.ok || decoded.value.data.item_id !== itemId) return [];
    const event = decoded.value;
    return event.type === 'ReportReady' || event.type === 'ReportOverdue' ? [event] : [];
  });
}

/** The Item's ReportOverdue, once it is on the topic. */
async function untilOverdue(itemId: string): Promise<ReportOverdue> {
  const overdueOf = (r: { message: Parameters<typeof decodeEvent>[0] }) => {
    const decoded = decodeEvent(r.message);
    return decoded.ok &&
      decoded.value.type === 'ReportOverdue' &&
      decoded.value.data.item_id === itemId
      ? decoded.value
      : undefined;
  };
  const [record] = await outcomes.until(1, (r) => overdueOf(r) !== undefined, 30_000);
  return overdueOf(record!)!;
}

async function getCalls(itemId: string): Promise<number> {
  const { body } = await world.sandbox.admin('GET', `/items/${encodeURIComponent(itemId)}`);
  return (body.item as { get_calls: number }).get_calls;
}

async function polls(itemId: string) {
  return world.db.query<{ outcome: string; polls: number; published_at: Date | null }[]>(
    'SELECT outcome, polls, published_at FROM report_polls WHERE item_id = $1 ORDER BY finished_at',
    [itemId],
  );
}

describe('report fetcher: a webhook that never comes', () => {
  it('finds the data by polling once the refresh is overdue, publishes a ReportReady found by polling, and fetches it once', async () => {
    // The Item has no webhook URL: Plaid could never tell us.
    const { itemId, accessToken } = await world.item({ transactions_per_account: 60 });
    const requestId = await world.accepted(itemId, 365);
    const [fetched] = await world.untilFetches(itemId, 1, 30_000);
    if (fetched?.type !== 'ReportFetched')
      throw new Error(`expected ReportFetched: ${fetched?.type}`);
    expect(fetched.data.refresh_request_ids).toEqual([requestId]);

    const [found] = outcomesOf(itemId);
    if (found?.type !== 'ReportReady') throw new Error(`expected ReportReady: ${found?.type}`);
    const item = (await world.sandbox.admin('GET', `/items/${encodeURIComponent(itemId)}`)).body
      .item as { last_successful_update_time: string };
    const lut = new Date(item.last_successful_update_time).toISOString();
    expect(found.metadata.source).toBe('urn:cashflow-refresh:report-fetcher');
    expect(found.data).toMatchObject({
      found_by: 'polling',
      // Received when Plaid's data was ready: it answers exactly the refreshes that data holds.
      received_at: lut,
      environment: null,
      webhook: {},
      poll: { last_successful_update_time: lut, refresh_request_ids: [requestId] },
    });
    expect(found.data.delivery_id).toBe(`poll:${found.data.poll!.poll_id}`);
    expect(fetched.data.report_event_id).toBe(found.metadata.id);
    expect(await polls(itemId)).toEqual([
      expect.objectContaining({ outcome: 'found', polls: 1, published_at: expect.any(Date) }),
    ]);

    await world.settled();
    // One poll (count 1), then the pages of one fetch: nothing fetched twice.
    expect(await getCalls(itemId)).toBe(1 + fetched.data.pages);
    expect(world.fetchEventsOf(itemId)).toHaveLength(1);
    expect(await world.stored(itemId)).toEqual(await world.served(accessToken, 365));
  });

  it('changes nothing when the webhook comes after polling found the data', async () => {
    const { itemId } = await world.item({ transactions_per_account: 20 });
    await world.accepted(itemId, 365);
    await world.untilFetches(itemId, 1, 30_000);
    await world.settled();
    const calls = await getCalls(itemId);

    await world.reportReady(itemId);
    await world.settled();
    await sleep(500);
    expect(world.fetchEventsOf(itemId)).toHaveLength(1);
    expect(await getCalls(itemId)).toBe(calls);
  });

  it('polls with backoff while the data stays older than the acceptance, then gives up with ReportOverdue', async () => {
    const { itemId } = await world.item({ transactions_per_account: 5 });
    // Accepted now, after the sandbox's data: Plaid never finishes this refresh.
    const requestId = await world.accepted(itemId, 90, new Date());
    const overdue = await untilOverdue(itemId);
    expect(overdue.data).toMatchObject({
      refresh_request_ids: [requestId],
      last_error: null,
    });
    const item = (await world.sandbox.admin('GET', `/items/${encodeURIComponent(itemId)}`)).body
      .item as { last_successful_update_time: string };
    expect(overdue.data.last_successful_update_time).toBe(
      new Date(item.last_successful_update_time).toISOString(),
    );
    // 1.5 s to overdue, then 300, 600, 1000, 1000... ms apart until 6 s after the acceptance:
    // at most 7 polls (fewer on a slow machine), where the runner's 100 ms tick would make 45.
    expect(overdue.data.polls).toBeGreaterThanOrEqual(1);
    expect(overdue.data.polls).toBeLessThanOrEqual(8);
    expect(await getCalls(itemId)).toBe(overdue.data.polls);

    await world.settled();
    await sleep(1500);
    // Given up: no more polls, nothing fetched.
    expect(await getCalls(itemId)).toBe(overdue.data.polls);
    expect(world.fetchEventsOf(itemId)).toEqual([]);
    expect(outcomesOf(itemId).map((e) => e.type)).toEqual(['ReportOverdue']);
  });

  it('does not poll when the webhook comes in time', async () => {
    const { itemId } = await world.item({ transactions_per_account: 20 });
    // The webhook is read first, so no moment passes with the refresh waiting, however slow
    // the machine: the acceptance, read next, is answered by it at once.
    await world.reportReady(itemId);
    await world.settled();
    await world.accepted(itemId, 365);
    const [fetched] = await world.untilFetches(itemId);
    if (fetched?.type !== 'ReportFetched')
      throw new Error(`expected ReportFetched: ${fetched?.type}`);
    await sleep(2500);
    await world.settled();
    expect(await getCalls(itemId)).toBe(fetched.data.pages);
    expect(await polls(itemId)).toEqual([]);
  });

  it('gives up at once when the poll meets an Item error', async () => {
    const { itemId } = await world.item({
      transactions_per_account: 5,
      get_behaviour: { errors: { error_code: 'ITEM_LOGIN_REQUIRED', count: 100 } },
    });
    const requestId = await world.accepted(itemId, 90, new Date());
    const overdue = await untilOverdue(itemId);
    expect(overdue.data).toMatchObject({
      refresh_request_ids: [requestId],
      polls: 1,
      last_error: { source: 'plaid', error_code: 'ITEM_LOGIN_REQUIRED' },
    });
  });

  it('polls each overdue Item once with two fetchers running side by side', async () => {
    const second = await world.startFetcher(SETTINGS);
    try {
      const items = await Promise.all(
        Array.from({ length: 6 }, () => world.item({ transactions_per_account: 10 })),
      );
      for (const { itemId } of items) await world.accepted(itemId, 365);
      for (const { itemId } of items) await world.untilFetches(itemId, 1, 30_000);
      await world.settled();
      for (const { itemId } of items) {
        const [fetched] = world.fetchEventsOf(itemId);
        if (fetched?.type !== 'ReportFetched') throw new Error(`expected ReportFetched`);
        expect(await getCalls(itemId)).toBe(1 + fetched.data.pages);
        expect(world.fetchEventsOf(itemId)).toHaveLength(1);
      }
    } finally {
      await second.app.close();
    }
  });

  it('keeps the poll schedule in PostgreSQL: a fetcher started after another stopped makes the poll', async () => {
    const { itemId } = await world.item({ transactions_per_account: 10 });
    // Accepted now: the data Plaid has is older, so no poll can find it yet.
    const requestId = await world.accepted(itemId, 365, new Date());
    await fetcher.app.close();
    const [row] = await world.db.query<{ due_at: Date | null }[]>(
      'SELECT due_at FROM report_fetch_items WHERE item_id = $1',
      [itemId],
    );
    expect(row?.due_at).toBeInstanceOf(Date);
    // Plaid finishes the refresh while no fetcher runs; the webhook never comes.
    const advanced = await world.sandbox.admin(
      'POST',
      `/items/${encodeURIComponent(itemId)}/advance`,
      { generations: 1 },
    );
    expect(advanced.status).toBe(200);
    fetcher = await world.startFetcher(SETTINGS);
    const [fetched] = await world.untilFetches(itemId, 1, 30_000);
    if (fetched?.type !== 'ReportFetched') throw new Error(`expected ReportFetched`);
    expect(fetched.data.refresh_request_ids).toEqual([requestId]);
    const [found] = outcomesOf(itemId);
    expect(found).toMatchObject({ type: 'ReportReady', data: { found_by: 'polling' } });
  });
});
