import { CHANGELOG_HEADERS, decodeChangelogKey } from '@cashflow/contracts';
import type { LogRecord } from '../../../apps/cli/src/check/invariants';
import {
  changelogAgainstStore,
  storedAgainstSandbox,
} from '../../../apps/cli/src/check/report-checks';
import { fetcherWorld, type FetcherWorld } from '../../support/report-fetcher';

let world: FetcherWorld;
let fetcherUrl: string;

beforeAll(async () => {
  world = await fetcherWorld();
  fetcherUrl = (await world.startFetcher({ REPORT_FETCH_PAGE_SIZE: '100' })).url;
});

afterAll(() => world?.close());

describe('report fetcher: after ReportReady, the report stored and delivered', () => {
  it('stores every page of the report for the requested window and publishes ReportFetched and the changelog', async () => {
    const { itemId, accessToken } = await world.item({ transactions_per_account: 150 });
    const requestId = await world.accepted(itemId, 730);
    const reportId = await world.reportReady(itemId);

    const [event] = await world.untilFetches(itemId);
    expect(event?.type).toBe('ReportFetched');
    if (event?.type !== 'ReportFetched') return;
    const served = await world.served(accessToken, 730);
    expect(served.size).toBe(300);
    expect(event.data).toMatchObject({
      item_id: itemId,
      report_event_id: reportId,
      days_requested: 730,
      refresh_request_ids: [requestId],
      pages: 3,
      restarts: 0,
      accounts: 2,
      transactions: 300,
      added: 300,
      modified: 0,
      removed: 0,
      changelog: true,
    });
    expect(event.metadata.causationId).toBe(reportId);
    expect(event.metadata.correlationId).toBe(requestId);

    const stored = await world.stored(itemId);
    expect([...stored.keys()].sort()).toEqual([...served.keys()].sort());
    for (const [id, transaction] of served) expect(stored.get(id)).toEqual(transaction);

    const records = await world.changelog.until(300, (r) => {
      return decodeChangelogKey(r.message.key)?.item_id === itemId;
    });
    for (const r of records) {
      const key = decodeChangelogKey(r.message.key)!;
      const value = JSON.parse(r.message.value!.toString()) as Record<string, unknown>;
      expect(r.message.headers?.[CHANGELOG_HEADERS.change]?.toString()).toBe('added');
      expect(value).toEqual({
        ...served.get(key.transaction_id),
        item_id: itemId,
        fetch_id: event.data.fetch_id,
      });
    }
  });

  it('fetches only the requested window: days_requested of the largest request the report answers', async () => {
    const { itemId, accessToken } = await world.item({ transactions_per_account: 100 });
    await world.accepted(itemId, 30);
    await world.accepted(itemId, 90);
    // As in production, where Plaid's webhook follows the worker's outcome by seconds: the
    // fetcher has read both acceptances before the report.
    await world.settled();
    await world.reportReady(itemId);
    const [event] = await world.untilFetches(itemId);
    expect(event?.data.days_requested).toBe(90);
    const served = await world.served(accessToken, 90);
    expect(served.size).toBeLessThan(200);
    expect([...(await world.stored(itemId)).keys()].sort()).toEqual([...served.keys()].sort());
  });

  it('does not fetch again for a repeated ReportReady, and stores the same snapshot only once', async () => {
    const { itemId } = await world.item({ transactions_per_account: 20 });
    await world.accepted(itemId, 365);
    await world.reportReady(itemId);
    await world.untilFetches(itemId);
    const before = await world.sandbox.admin('GET', `/items/${encodeURIComponent(itemId)}`);

    await world.reportReady(itemId);
    await world.reportReady(itemId);
    await world.settled();

    expect(world.fetchEventsOf(itemId)).toHaveLength(1);
    const after = await world.sandbox.admin('GET', `/items/${encodeURIComponent(itemId)}`);
    expect(after.body.item).toEqual(before.body.item);
    const rows: { n: number }[] = await world.db.query(
      'SELECT count(*)::int AS n FROM report_fetches WHERE item_id = $1',
      [itemId],
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('fetches nothing for ReportFailed', async () => {
    const { itemId } = await world.item({ transactions_per_account: 20 });
    await world.accepted(itemId, 365);
    await world.reportReady(itemId, new Date(), 'INSTITUTION_NOT_RESPONDING');
    await world.settled();
    expect(world.fetchEventsOf(itemId)).toEqual([]);
    const item = await world.sandbox.admin('GET', `/items/${encodeURIComponent(itemId)}`);
    expect(item.body.item).toMatchObject({ get_calls: 0, insights_calls: 0 });
    expect((await world.stored(itemId)).size).toBe(0);
  });

  it('keeps the truth for the window across three refreshes: added, modified, removed, pending posted', async () => {
    const { itemId, accessToken } = await world.item({ transactions_per_account: 120 });
    const path = `/items/${encodeURIComponent(itemId)}`;
    let previous = new Map<string, Record<string, unknown>>();
    // Refreshes of one Item are Plaid-paced (30 s apart), and a report answers refreshes by
    // time: the events carry times that far apart.
    let clock = Date.now();
    for (let refresh = 1; refresh <= 3; refresh++) {
      if (refresh > 1) await world.sandbox.admin('POST', `${path}/advance`, { generations: 1 });
      clock += 30_000;
      await world.accepted(itemId, 365, new Date(clock));
      await world.reportReady(itemId, new Date(clock + 5_000));
      const events = await world.untilFetches(itemId, refresh);
      const event = events[refresh - 1]!;
      if (event.type !== 'ReportFetched') throw new Error(`fetch ${refresh}: ${event.type}`);
      const served = await world.served(accessToken, 365);
      const stored = await world.stored(itemId);
      expect([...stored.keys()].sort()).toEqual([...served.keys()].sort());
      for (const [id, transaction] of served) expect(stored.get(id)).toEqual(transaction);

      const added = [...served.keys()].filter((id) => !previous.has(id));
      const removed = [...previous.keys()].filter((id) => !served.has(id));
      const modified = [...served.keys()].filter(
        (id) =>
          previous.has(id) && JSON.stringify(previous.get(id)) !== JSON.stringify(served.get(id)),
      );
      expect(event.data).toMatchObject({
        added: added.length,
        modified: refresh === 1 ? 0 : modified.length,
        removed: removed.length,
      });
      if (refresh > 1) {
        expect(added.length).toBeGreaterThan(0);
        expect(removed.length).toBeGreaterThan(0);
        // A pending transaction that posted: the posted one names it, and it is gone.
        const posted = [...served.values()].find((t) => t.pending_transaction_id);
        if (posted) expect(stored.has(posted.pending_transaction_id as string)).toBe(false);
      }
      previous = served;
    }
    const gone: { n: number }[] = await world.db.query(
      `SELECT count(*)::int AS n FROM report_transactions
        WHERE item_id = $1 AND removed_at IS NOT NULL AND last_change = 'removed'`,
      [itemId],
    );
    expect(gone[0]!.n).toBeGreaterThan(0);
  });

  it('counts its Plaid calls by endpoint and result in plaid_report_call_seconds', async () => {
    const { itemId } = await world.item({ transactions_per_account: 150 });
    await world.accepted(itemId, 730);
    await world.reportReady(itemId);
    await world.untilFetches(itemId);
    const text = await (await fetch(`${fetcherUrl}/metrics`)).text();
    const count = (endpoint: string, result: string) =>
      Number(
        new RegExp(
          `^plaid_report_call_seconds_count\\{(?=[^}]*endpoint="${endpoint}")(?=[^}]*result="${result}")[^}]*\\} (\\d+)$`,
          'm',
        ).exec(text)?.[1] ?? 0,
      );
    // Three pages of 100 for this Item alone, and its insights.
    expect(count('/cashflow_report/get', 'ok')).toBeGreaterThanOrEqual(3);
    expect(count('/cashflow_report/insights/get', 'ok')).toBeGreaterThanOrEqual(1);
  });

  it('answers an Item whose token is not registered with ReportFetchFailed UNKNOWN_ITEM, not retrying', async () => {
    const created = await world.sandbox.createItem({ webhook: null });
    await world.accepted(created.item_id, 365);
    await world.reportReady(created.item_id);
    const [event] = await world.untilFetches(created.item_id);
    expect(event?.type).toBe('ReportFetchFailed');
    if (event?.type !== 'ReportFetchFailed') return;
    expect(event.data.error).toMatchObject({ source: 'fetcher', error_code: 'UNKNOWN_ITEM' });
    expect(event.data.retryable).toBe(false);
    expect(JSON.stringify(event)).not.toContain(created.access_token);
  });
});

describe('check, on what the fetcher stored and published', () => {
  it('finds the stored transactions equal to the sandbox and to the changelog, and finds a tampered row', async () => {
    await world.settled();
    // What check reads of the log that these rules need: the fetch events.
    const records = world.allFetchEvents().map((event) => ({ event }) as unknown as LogRecord);
    const sandbox = await storedAgainstSandbox(world.db, world.sandbox.url);
    expect(sandbox.holds).toBe(true);
    expect(sandbox.counts.compared).toBeGreaterThan(3);
    const changelog = await changelogAgainstStore(world.kafka, world.db, world.prefix, records);
    expect(changelog).toMatchObject({ holds: true });
    expect(changelog.counts.stored).toBeGreaterThan(300);

    const [row] = await world.db.query<[{ item_id: string }[], number]>(
      `UPDATE report_transactions SET content = jsonb_set(content, '{name}', '"tampered"')
        WHERE transaction_id = (SELECT min(transaction_id) FROM report_transactions
                                 WHERE removed_at IS NULL)
        RETURNING item_id`,
    );
    expect(row).toHaveLength(1);
    expect((await storedAgainstSandbox(world.db, world.sandbox.url)).holds).toBe(false);
    expect((await changelogAgainstStore(world.kafka, world.db, world.prefix, records)).holds).toBe(
      false,
    );
  });
});
