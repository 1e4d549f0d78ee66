import { randomUUID } from 'node:crypto';
import { projectorWorld, type ProjectorWorld } from '../../support/projector';
import {
  CHECKING,
  plaidTransaction as transaction,
  storeFetch,
  storeReport,
} from '../../support/stored-reports';

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

  const storedItem = () => storeReport(world.rows);

  const ids = (body: { transactions: { transaction_id: string }[] }) =>
    body.transactions.map((t) => t.transaction_id);

  describe('GET /items/{item_id}/report', () => {
    it("answers the newest fetch, the accounts, the counts and the insights' summary", async () => {
      const { itemId, fetchId } = await storedItem();
      // An older failure is left out; the newest successful fetch is the summary's.
      await storeFetch(world.rows, itemId, {
        outcome: 'failed',
        finishedAt: '2026-11-24T09:00:00Z',
      });
      await storeFetch(world.rows, itemId, {
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
          CHECKING,
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
      const failed = await storeFetch(world.rows, itemId, {
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
      await storeFetch(world.rows, failing, {
        outcome: 'failed',
        finishedAt: '2026-11-24T10:00:00Z',
      });
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
