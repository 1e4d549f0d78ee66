import { randomUUID } from 'node:crypto';
import { projectorWorld, type ProjectorWorld } from '../../support/projector';

/**
 * The read API over the stored reports: rows the report fetcher would have written are inserted
 * directly (the fetcher's own tests cover how they get there).
 */
describe('projector read API: reports and transactions', () => {
  let world: ProjectorWorld;
  let projector: Awaited<ReturnType<ProjectorWorld['startProjector']>>;

  beforeAll(async () => {
    world = await projectorWorld();
    projector = await world.startProjector();
  });
  afterAll(async () => {
    await world.close();
  });

  interface FetchRow {
    readonly outcome: 'fetched' | 'failed';
    readonly finishedAt: string;
    readonly transactions?: number;
  }

  /** A fetch row as the fetcher writes it, with the event it published. */
  async function storeFetch(itemId: string, fetch: FetchRow): Promise<string> {
    const fetchId = randomUUID();
    const fetched = fetch.outcome === 'fetched';
    const error = {
      source: 'plaid',
      error_type: 'ITEM_ERROR',
      error_code: 'ITEM_LOGIN_REQUIRED',
      error_message: 'the login details of this item have changed',
      display_message: null,
      plaid_request_id: 'plaid-1',
      http_status: 400,
    };
    const insights = {
      months: 3,
      historical_balance_days: 90,
      latest_month: {
        start_date: '2026-11-01',
        end_date: '2026-11-30',
        total_revenue: 5120.5,
        ending_balance: 4200,
        average_daily_net_cashflow: 12.25,
      },
      last_generated_time: '2026-11-24T10:01:00.000Z',
    };
    const data = fetched
      ? { insights, fetched_at: fetch.finishedAt }
      : { error, retryable: false, failed_at: fetch.finishedAt };
    await world.rows(
      `INSERT INTO report_fetches
         (fetch_id, item_id, outcome, report_event_id, report_received_at, days_requested,
          refresh_request_ids, window_start, last_successful_update_time, pages, restarts,
          accounts, transactions, added, modified, removed, error_code, error, attempts,
          started_at, finished_at, duration_ms, event, changelog_pending, published_at)
       VALUES ($1, $2, $3, 'report-1', '2026-11-24T10:00:30Z', 90, $4, $5, $6, $7, 0, $8, $9,
               $9, 0, 0, $10, $11, 1, $12::timestamptz - interval '2 seconds', $12, 2000, $13,
               false, now())`,
      [
        fetchId,
        itemId,
        fetch.outcome,
        fetched ? ['request-1'] : [],
        fetched ? '2026-08-27' : null,
        fetched ? '2026-11-24T10:00:00Z' : null,
        fetched ? 1 : null,
        fetched ? 2 : null,
        fetched ? (fetch.transactions ?? 5) : null,
        fetched ? null : error.error_code,
        fetched ? null : JSON.stringify(error),
        fetch.finishedAt,
        JSON.stringify({ type: fetched ? 'ReportFetched' : 'ReportFetchFailed', data }),
      ],
    );
    return fetchId;
  }

  const transaction = (id: string, date: string, account = 'acc-checking') => ({
    transaction_id: id,
    account_id: account,
    date,
    amount: 12.5,
    pending: false,
    name: `Coffee ${id}`,
    iso_currency_code: 'USD',
  });

  /** An Item with a stored report: two accounts, insights and five transactions, one removed. */
  async function storedItem() {
    const itemId = `item-${randomUUID()}`;
    const fetchId = await storeFetch(itemId, {
      outcome: 'fetched',
      finishedAt: '2026-11-24T10:01:00Z',
    });
    for (const account of [
      {
        account_id: 'acc-checking',
        name: 'Plaid Checking',
        official_name: null,
        type: 'depository',
        subtype: 'checking',
        mask: '0000',
        balances: {
          available: 4200,
          current: 4200,
          limit: null,
          iso_currency_code: 'USD',
          unofficial_currency_code: null,
        },
      },
      { account_id: 'acc-card', name: 'Plaid Credit Card', type: 'credit' },
    ]) {
      await world.rows(
        `INSERT INTO report_accounts (item_id, account_id, content, last_fetch_id, updated_at)
         VALUES ($1, $2, $3, $4, now())`,
        [itemId, account.account_id, JSON.stringify(account), fetchId],
      );
    }
    await world.rows(
      `INSERT INTO report_insights (item_id, content, last_generated_time, last_fetch_id, updated_at)
       VALUES ($1, '{"accounts": []}', '2026-11-24T10:01:00Z', $2, now())`,
      [itemId, fetchId],
    );
    const stored = [
      { t: transaction('t-b', '2026-11-20'), removed: false },
      { t: transaction('t-a', '2026-11-20'), removed: false },
      { t: transaction('t-c', '2026-11-22', 'acc-card'), removed: false },
      { t: transaction('t-d', '2026-11-21'), removed: true },
      { t: transaction('t-e', '2026-10-02'), removed: false },
    ];
    for (const { t, removed } of stored) {
      await world.rows(
        `INSERT INTO report_transactions
           (item_id, transaction_id, account_id, date, amount, pending, content, first_seen_at,
            last_changed_at, removed_at, first_fetch_id, last_fetch_id, last_change)
         VALUES ($1, $2, $3, $4, $5, $6, $7, '2026-11-24T10:01:00Z', '2026-11-24T10:01:00Z',
                 $8, $9, $9, $10)`,
        [
          itemId,
          t.transaction_id,
          t.account_id,
          t.date,
          t.amount,
          t.pending,
          JSON.stringify(t),
          removed ? '2026-11-24T10:01:00Z' : null,
          fetchId,
          removed ? 'removed' : 'added',
        ],
      );
    }
    return { itemId, fetchId };
  }

  const ids = (body: { transactions: { transaction_id: string }[] }) =>
    body.transactions.map((t) => t.transaction_id);

  describe('GET /items/{item_id}/report', () => {
    it("answers the newest fetch, the accounts, the counts and the insights' summary", async () => {
      const { itemId, fetchId } = await storedItem();
      // An older failure is left out; the newest successful fetch is the summary's.
      await storeFetch(itemId, { outcome: 'failed', finishedAt: '2026-11-24T09:00:00Z' });
      await storeFetch(itemId, {
        outcome: 'fetched',
        finishedAt: '2026-11-20T09:00:00Z',
        transactions: 1,
      });
      const { status, body } = await projector.get(`/items/${itemId}/report`);
      expect(status).toBe(200);
      expect(body).toEqual({
        item_id: itemId,
        fetch: {
          fetch_id: fetchId,
          fetched_at: '2026-11-24T10:01:00.000Z',
          report_event_id: 'report-1',
          report_received_at: '2026-11-24T10:00:30.000Z',
          days_requested: 90,
          refresh_request_ids: ['request-1'],
          window_start: '2026-08-27',
          last_successful_update_time: '2026-11-24T10:00:00.000Z',
          pages: 1,
          restarts: 0,
          accounts: 2,
          transactions: 5,
          added: 5,
          modified: 0,
          removed: 0,
          duration_ms: 2000,
        },
        accounts: [
          {
            account_id: 'acc-card',
            name: 'Plaid Credit Card',
            official_name: null,
            type: 'credit',
            subtype: null,
            mask: null,
            balances: null,
          },
          {
            account_id: 'acc-checking',
            name: 'Plaid Checking',
            official_name: null,
            type: 'depository',
            subtype: 'checking',
            mask: '0000',
            balances: {
              available: 4200,
              current: 4200,
              limit: null,
              iso_currency_code: 'USD',
              unofficial_currency_code: null,
            },
          },
        ],
        transactions: {
          current: 4,
          removed: 1,
          oldest_date: '2026-10-02',
          newest_date: '2026-11-22',
        },
        insights: expect.objectContaining({
          months: 3,
          latest_month: expect.objectContaining({ end_date: '2026-11-30', ending_balance: 4200 }),
        }),
        last_failure: null,
      });
    });

    it('shows a failed fetch newer than the stored report', async () => {
      const { itemId } = await storedItem();
      const failed = await storeFetch(itemId, {
        outcome: 'failed',
        finishedAt: '2026-11-25T08:00:00Z',
      });
      const { body } = await projector.get(`/items/${itemId}/report`);
      expect(body.last_failure).toEqual({
        fetch_id: failed,
        failed_at: '2026-11-25T08:00:00.000Z',
        report_event_id: 'report-1',
        error: {
          source: 'plaid',
          code: 'ITEM_LOGIN_REQUIRED',
          message: 'the login details of this item have changed',
        },
        retryable: false,
        attempts: 1,
      });
    });

    it('404 naming why when nothing was fetched for the Item', async () => {
      const unknown = `item-${randomUUID()}`;
      const missing = await projector.get(`/items/${unknown}/report`);
      expect(missing.status).toBe(404);
      expect(missing.body.error).toEqual({
        code: 'NOT_FOUND',
        message: `no report of item ${unknown} has been fetched (the report fetcher stores one after CASHFLOW_REPORT_READY)`,
      });
      const failing = `item-${randomUUID()}`;
      await storeFetch(failing, { outcome: 'failed', finishedAt: '2026-11-24T10:00:00Z' });
      const failed = await projector.get(`/items/${failing}/report`);
      expect(failed).toMatchObject({ status: 404 });
      expect(failed.body.error.message).toBe(
        `no report of item ${failing} has been fetched (its last fetch failed at 2026-11-24T10:00:00.000Z: ITEM_LOGIN_REQUIRED)`,
      );
      expect((await projector.get(`/items/${failing}/transactions`)).status).toBe(404);
    });

    it('needs a bearer token', async () => {
      const { itemId } = await storedItem();
      expect((await projector.get(`/items/${itemId}/report`, null)).status).toBe(401);
      expect((await projector.get(`/items/${itemId}/transactions`, 'not-a-token')).status).toBe(
        401,
      );
    });
  });

  describe('GET /items/{item_id}/transactions', () => {
    it('pages the current transactions newest first, each as Plaid gave it plus its times', async () => {
      const { itemId } = await storedItem();
      const first = await projector.get(`/items/${itemId}/transactions?limit=2`);
      expect(first.status).toBe(200);
      expect(ids(first.body)).toEqual(['t-c', 't-a']);
      expect(first.body.transactions[0]).toEqual({
        ...transaction('t-c', '2026-11-22', 'acc-card'),
        first_seen_at: '2026-11-24T10:01:00.000Z',
        last_changed_at: '2026-11-24T10:01:00.000Z',
        removed_at: null,
      });
      const second = await projector.get(
        `/items/${itemId}/transactions?limit=2&cursor=${first.body.next_cursor}`,
      );
      expect(ids(second.body)).toEqual(['t-b', 't-e']);
      expect(second.body.next_cursor).toBeNull();
      const all = await projector.get(`/items/${itemId}/transactions`);
      expect(ids(all.body)).toEqual(['t-c', 't-a', 't-b', 't-e']);
    });

    it('includes removed ones on request, each with removed_at', async () => {
      const { itemId } = await storedItem();
      const { body } = await projector.get(`/items/${itemId}/transactions?include_removed=true`);
      expect(ids(body)).toEqual(['t-c', 't-d', 't-a', 't-b', 't-e']);
      expect(body.transactions[1]).toMatchObject({
        transaction_id: 't-d',
        removed_at: '2026-11-24T10:01:00.000Z',
      });
      // Paged, the cursor passes the removed row too.
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { body: { transactions: { transaction_id: string }[]; next_cursor: string } } =
          await projector.get(
            `/items/${itemId}/transactions?include_removed=true&limit=1${cursor ? `&cursor=${cursor}` : ''}`,
          );
        seen.push(...ids(page.body));
        cursor = page.body.next_cursor;
      } while (cursor);
      expect(seen).toEqual(ids(body));
    });

    it('filters by account and dates; refuses bad parameters', async () => {
      const { itemId } = await storedItem();
      const card = await projector.get(`/items/${itemId}/transactions?account_id=acc-card`);
      expect(ids(card.body)).toEqual(['t-c']);
      const november = await projector.get(
        `/items/${itemId}/transactions?since=2026-11-01&until=2026-11-20`,
      );
      expect(ids(november.body)).toEqual(['t-a', 't-b']);
      for (const query of [
        'since=yesterday',
        'limit=501',
        'include_removed=yes',
        'cursor=garbage',
        `cursor=${Buffer.from('["not a date","t"]').toString('base64url')}`,
      ]) {
        const bad = await projector.get(`/items/${itemId}/transactions?${query}`);
        expect({ query, status: bad.status, code: bad.body.error?.code }).toEqual({
          query,
          status: 400,
          code: 'INVALID_PARAMETER',
        });
      }
    });
  });
});
