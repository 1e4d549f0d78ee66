import { nonConformities } from '../../support/plaid-schemas';
import {
  startSandbox,
  webhookReceiver,
  type JsonResponse,
  type Sandbox,
} from '../../support/plaid-sandbox';
import { waitFor } from '../../support/wait-for';

interface Txn {
  transaction_id: string;
  account_id: string;
  date: string;
  amount: number;
  name: string;
  pending: boolean;
  pending_transaction_id: string | null;
  authorized_date: string | null;
}

/** Pages /cashflow_report/get from cursor "" until has_more is false, as a fetcher does. */
async function fetchAll(sandbox: Sandbox, token: string, days: number, count = 100) {
  const pages: JsonResponse[] = [];
  let cursor = '';
  for (;;) {
    const page = await sandbox.plaid('/cashflow_report/get', {
      access_token: token,
      days_requested: days,
      count,
      cursor,
    });
    if (page.status !== 200) throw new Error(`get: ${page.status} ${JSON.stringify(page.body)}`);
    pages.push(page);
    cursor = page.body.next_cursor;
    if (!page.body.has_more) break;
  }
  return {
    pages,
    transactions: pages.flatMap((p) => p.body.transactions as Txn[]),
    times: [...new Set(pages.map((p) => p.body.last_successful_update_time as string))],
  };
}

async function describeItem(sandbox: Sandbox, itemId: string) {
  const response = await sandbox.admin('GET', `/items/${itemId}`);
  return response.body.item as {
    generation: number;
    last_successful_update_time: string;
    get_calls: number;
    insights_calls: number;
  };
}

async function truth(sandbox: Sandbox, itemId: string, days: number) {
  const response = await sandbox.admin(
    'GET',
    `/items/${itemId}/transactions?days_requested=${days}`,
  );
  expect(response.status).toBe(200);
  return response.body as {
    item_id: string;
    generation: number;
    last_successful_update_time: string;
    as_of: string;
    transactions: Txn[];
  };
}

/** A refresh that completes: the Item's generation moves to `generation`. */
async function refreshed(sandbox: Sandbox, item: { item_id: string; access_token: string }) {
  const before = (await describeItem(sandbox, item.item_id)).generation;
  const response = await sandbox.plaid('/cashflow_report/refresh', {
    access_token: item.access_token,
    days_requested: 365,
  });
  expect(response.status).toBe(200);
  return waitFor(`generation ${before + 1}`, async () => {
    const now = await describeItem(sandbox, item.item_id);
    return now.generation > before ? now : undefined;
  });
}

function diff(before: Txn[], after: Txn[]) {
  const old = new Map(before.map((t) => [t.transaction_id, t]));
  const now = new Map(after.map((t) => [t.transaction_id, t]));
  return {
    added: after.filter((t) => !old.has(t.transaction_id)),
    removed: before.filter((t) => !now.has(t.transaction_id)),
    modified: after.filter((t) => {
      const was = old.get(t.transaction_id);
      return was !== undefined && JSON.stringify(was) !== JSON.stringify(t);
    }),
  };
}

describe('Plaid sandbox: transactions evolve between refreshes', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startSandbox({
      PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '100',
      PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '1000',
    });
  });
  afterAll(() => sandbox.close());

  it('adds, modifies, removes and posts transactions with each completed refresh, per the schema', async () => {
    const item = await sandbox.createItem({ webhook: null, transactions_per_account: 300 });
    const gen0 = await fetchAll(sandbox, item.access_token, 120);
    expect((await describeItem(sandbox, item.item_id)).generation).toBe(0);
    expect(gen0.transactions.some((t) => t.pending)).toBe(false);

    const first = await refreshed(sandbox, item);
    expect(first.generation).toBe(1);
    expect(Date.parse(first.last_successful_update_time)).toBeGreaterThan(
      Date.parse(gen0.times[0]!),
    );
    const gen1 = await fetchAll(sandbox, item.access_token, 120);
    expect(gen1.times).toEqual([first.last_successful_update_time]);
    const step1 = diff(gen0.transactions, gen1.transactions);
    expect(step1.added.length).toBeGreaterThanOrEqual(2);
    expect(step1.modified.length).toBeGreaterThanOrEqual(2);
    expect(step1.removed.length).toBeGreaterThanOrEqual(1);

    // New transactions are pending with probability 1/2: refresh until some are.
    let before = gen1;
    let pending = gen1.transactions.filter((t) => t.pending);
    for (let i = 0; pending.length === 0 && i < 10; i++) {
      await refreshed(sandbox, item);
      before = await fetchAll(sandbox, item.access_token, 120);
      pending = before.transactions.filter((t) => t.pending);
    }
    expect(pending.length).toBeGreaterThan(0);
    await refreshed(sandbox, item);
    const after = await fetchAll(sandbox, item.access_token, 120);
    const ids = new Set(after.transactions.map((t) => t.transaction_id));
    for (const p of pending) {
      expect(p.pending_transaction_id).toBeNull();
      expect(ids.has(p.transaction_id)).toBe(false);
      const posted = after.transactions.filter(
        (t) => t.pending_transaction_id === p.transaction_id,
      );
      expect(posted).toHaveLength(1);
      expect(posted[0]).toMatchObject({
        pending: false,
        account_id: p.account_id,
        authorized_date: p.date,
      });
    }
    for (const page of [...gen1.pages, ...before.pages, ...after.pages]) {
      expect(nonConformities('CashflowReportGetResponse', page.body)).toEqual([]);
    }
    const dates = after.transactions.map((t) => t.date);
    expect([...dates].sort().reverse()).toEqual(dates);
  });

  it('serves, unpaged, exactly what full paging returns (the truth endpoint)', async () => {
    const item = await sandbox.createItem({ webhook: null, transactions_per_account: 400 });
    await sandbox.admin('POST', `/items/${item.item_id}/advance`, { generations: 3 });
    for (const days of [1, 30, 365, 730]) {
      const paged = await fetchAll(sandbox, item.access_token, days, 37);
      const whole = await truth(sandbox, item.item_id, days);
      expect(whole.transactions).toEqual(paged.transactions);
      expect(whole).toMatchObject({
        item_id: item.item_id,
        generation: 3,
        last_successful_update_time: paged.times[0],
      });
      expect(paged.pages[0]!.body.total_transactions).toBe(whole.transactions.length);
      // Its transactions are Plaid's CashflowReportTransaction, as in a /get response.
      expect(
        nonConformities('CashflowReportGetResponse', {
          ...paged.pages[0]!.body,
          transactions: whole.transactions,
        }),
      ).toEqual([]);
    }
    expect((await truth(sandbox, item.item_id, 730)).as_of).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('answers insights from the current generation: day-to-day balance changes are its transactions', async () => {
    const item = await sandbox.createItem({ webhook: null, transactions_per_account: 300 });
    const insights = async () => {
      const response = await sandbox.plaid('/cashflow_report/insights/get', {
        access_token: item.access_token,
      });
      expect(response.status).toBe(200);
      expect(nonConformities('CashflowReportInsightsGetResponse', response.body)).toEqual([]);
      return response.body.account_insights.historical_balances as {
        date: string;
        amount: number;
      }[];
    };
    const gen0 = await insights();
    await sandbox.admin('POST', `/items/${item.item_id}/advance`, { generations: 2 });
    const gen2 = await insights();
    expect(gen2).not.toEqual(gen0);
    // Balances walk back from today's: the day before holds today's transactions undone.
    const { transactions } = await truth(sandbox, item.item_id, 90);
    for (let i = 0; i + 1 < gen2.length; i++) {
      const day = gen2[i]!.date;
      const net = transactions.filter((t) => t.date === day).reduce((s, t) => s + t.amount, 0);
      expect(gen2[i + 1]!.amount - gen2[i]!.amount).toBeCloseTo(net, 1);
    }
  });

  it('gives the same generation by refreshes and by advance, in another sandbox too', async () => {
    const other = await startSandbox();
    try {
      const input = { item_id: 'item-evolution-deterministic', seed: 5, webhook: null };
      const refreshedItem = await sandbox.createItem(input);
      await refreshed(sandbox, refreshedItem);
      await refreshed(sandbox, refreshedItem);
      const advancedItem = await other.createItem(input);
      const advanced = await other.admin('POST', `/items/${advancedItem.item_id}/advance`, {
        generations: 2,
      });
      expect(advanced.status).toBe(200);
      expect(advanced.body.item.generation).toBe(2);
      expect((await truth(other, input.item_id, 730)).transactions).toEqual(
        (await truth(sandbox, input.item_id, 730)).transactions,
      );
    } finally {
      await other.close();
    }
  });

  it('moves the data and the update time on POST /advance (one generation by default)', async () => {
    const item = await sandbox.createItem({ webhook: null });
    const start = await describeItem(sandbox, item.item_id);
    const once = await sandbox.admin('POST', `/items/${item.item_id}/advance`);
    expect(once.body.item.generation).toBe(1);
    expect(Date.parse(once.body.item.last_successful_update_time)).toBeGreaterThan(
      Date.parse(start.last_successful_update_time),
    );
    const bad = await sandbox.admin('POST', `/items/${item.item_id}/advance`, { generations: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'INVALID_FIELD', field: 'generations' });
    expect((await sandbox.admin('POST', '/items/nope/advance')).status).toBe(404);
    expect((await describeItem(sandbox, item.item_id)).generation).toBe(1);
  });

  it('refuses a truth request without a valid days_requested', async () => {
    const item = await sandbox.createItem({ webhook: null });
    for (const query of ['', '?days_requested=0', '?days_requested=731', '?days_requested=x']) {
      const response = await sandbox.admin('GET', `/items/${item.item_id}/transactions${query}`);
      expect(response.status).toBe(400);
      expect(response.body.error).toMatchObject({ code: 'INVALID_FIELD', field: 'days_requested' });
    }
    expect((await sandbox.admin('GET', '/items/nope/transactions?days_requested=5')).status).toBe(
      404,
    );
  });
});

describe('Plaid sandbox: what does not change the data', () => {
  it('keeps the generation on a webhook carrying an error, and on fire_webhook', async () => {
    const receiver = await webhookReceiver();
    const sandbox = await startSandbox({ PLAID_SANDBOX_WEBHOOK_URL: receiver.url });
    try {
      const item = await sandbox.createItem({
        behaviour: { kind: 'webhook_error', error_code: 'INSTITUTION_DOWN' },
      });
      const response = await sandbox.plaid('/cashflow_report/refresh', {
        access_token: item.access_token,
      });
      expect(response.status).toBe(200);
      await waitFor('the error webhook', () => receiver.received[0]);
      const fired = await sandbox.admin('POST', `/items/${item.item_id}/fire_webhook`);
      expect(fired.status).toBe(201);
      await waitFor('the fired webhook', () => receiver.received[1]);
      expect((await describeItem(sandbox, item.item_id)).generation).toBe(0);
    } finally {
      await sandbox.close();
      await receiver.close();
    }
  });
});
