import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nonConformities } from '../../support/plaid-schemas';
import { startSandbox, type JsonResponse, type Sandbox } from '../../support/plaid-sandbox';
import { waitFor } from '../../support/wait-for';

const get = (sandbox: Sandbox, token: string, cursor = '', count = 50) =>
  sandbox.plaid('/cashflow_report/get', {
    access_token: token,
    days_requested: 365,
    count,
    cursor,
  });

async function itemOf(sandbox: Sandbox, itemId: string) {
  return (await sandbox.admin('GET', `/items/${itemId}`)).body.item as {
    generation: number;
    last_successful_update_time: string;
    get_calls: number;
    insights_calls: number;
    get_behaviour: Record<string, unknown>;
  };
}

/** plaid_sandbox_get_answers_total for one endpoint and error code (0 when not yet counted). */
async function answers(sandbox: Sandbox, endpoint: string, errorCode: string): Promise<number> {
  const text = await (await fetch(`${sandbox.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('plaid_sandbox_get_answers_total{') &&
        l.includes(`endpoint="${endpoint}"`) &&
        l.includes(`error_code="${errorCode}"`),
    );
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/**
 * Fetches the whole window as the report fetcher does: pages from cursor "" until has_more is
 * false, starting again from the first page whenever last_successful_update_time moves.
 */
async function fetchRestarting(sandbox: Sandbox, token: string) {
  let restarts = 0;
  for (;;) {
    const pages: JsonResponse[] = [];
    let cursor = '';
    let moved = false;
    for (;;) {
      const page = await get(sandbox, token, cursor);
      expect(page.status).toBe(200);
      if (
        pages.length > 0 &&
        page.body.last_successful_update_time !== pages[0]!.body.last_successful_update_time
      ) {
        moved = true;
        break;
      }
      pages.push(page);
      cursor = page.body.next_cursor;
      if (!page.body.has_more) break;
    }
    if (!moved) {
      return {
        restarts,
        time: pages[0]!.body.last_successful_update_time as string,
        transactions: pages.flatMap((p) => p.body.transactions as { transaction_id: string }[]),
      };
    }
    restarts += 1;
  }
}

describe('Plaid sandbox: scripted /cashflow_report/get', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startSandbox();
  });
  afterAll(() => sandbox.close());

  it('moves the data after the first page of the next n paging loops', async () => {
    const item = await sandbox.createItem({
      webhook: null,
      transactions_per_account: 150,
      get_behaviour: { mutate_during_pagination: 1 },
    });
    const first = await get(sandbox, item.access_token);
    expect(first.body.has_more).toBe(true);
    const second = await get(sandbox, item.access_token, first.body.next_cursor);
    expect(second.status).toBe(200);
    expect(Date.parse(second.body.last_successful_update_time)).toBeGreaterThan(
      Date.parse(first.body.last_successful_update_time),
    );
    for (const page of [first, second]) {
      expect(nonConformities('CashflowReportGetResponse', page.body)).toEqual([]);
    }
    const described = await itemOf(sandbox, item.item_id);
    expect(described.generation).toBe(1);
    expect(described.get_behaviour.mutate_during_pagination).toBe(0);

    // The loop after the scripted ones sees one time throughout, and the truth.
    const again = await fetchRestarting(sandbox, item.access_token);
    expect(again.restarts).toBe(0);
    expect(again.time).toBe(second.body.last_successful_update_time);
    const truth = await sandbox.admin(
      'GET',
      `/items/${item.item_id}/transactions?days_requested=365`,
    );
    expect(again.transactions).toEqual(truth.body.transactions);
  });

  it('lets a fetcher that restarts on a moved update time end with the latest data', async () => {
    const item = await sandbox.createItem({ webhook: null, transactions_per_account: 150 });
    const set = await sandbox.admin('PUT', `/items/${item.item_id}/get_behaviour`, {
      mutate_during_pagination: 2,
    });
    expect(set.status).toBe(200);
    expect(set.body.item.get_behaviour).toEqual({
      mutate_during_pagination: 2,
      errors: null,
      latency_ms: 0,
    });
    const fetched = await fetchRestarting(sandbox, item.access_token);
    expect(fetched.restarts).toBe(2);
    const truth = await sandbox.admin(
      'GET',
      `/items/${item.item_id}/transactions?days_requested=365`,
    );
    expect(truth.body.generation).toBe(2);
    expect(fetched.time).toBe(truth.body.last_successful_update_time);
    expect(fetched.transactions).toEqual(truth.body.transactions);
  });

  it.each([
    ['INTERNAL_SERVER_ERROR', 500, 'API_ERROR'],
    ['PLANNED_MAINTENANCE', 503, 'API_ERROR'],
    ['ITEM_LOGIN_REQUIRED', 400, 'ITEM_ERROR'],
    ['RATE_LIMIT', 429, 'RATE_LIMIT_EXCEEDED'],
    ['PRODUCT_NOT_READY', 400, 'ITEM_ERROR'],
  ])('answers %s (%i %s) for the next calls, then pages again', async (code, status, type) => {
    const item = await sandbox.createItem({ webhook: null });
    await sandbox.admin('PUT', `/items/${item.item_id}/get_behaviour`, {
      errors: { error_code: code, count: 2 },
    });
    const before = await answers(sandbox, 'cashflow_report/get', code);
    const calls = [
      await get(sandbox, item.access_token),
      await get(sandbox, item.access_token),
      await get(sandbox, item.access_token),
    ];
    for (const failed of calls.slice(0, 2)) {
      expect(failed.status).toBe(status);
      expect(failed.body).toMatchObject({ error_code: code, error_type: type, status });
      expect(nonConformities('PlaidError', failed.body)).toEqual([]);
    }
    expect(calls[2]!.status).toBe(200);
    const described = await itemOf(sandbox, item.item_id);
    expect(described.get_calls).toBe(3);
    expect(described.get_behaviour.errors).toBeNull();
    expect((await answers(sandbox, 'cashflow_report/get', code)) - before).toBe(2);
  });

  it('counts /get and /insights/get calls per Item and in plaid_sandbox_get_answers_total', async () => {
    const item = await sandbox.createItem({ webhook: null });
    const served = await answers(sandbox, 'cashflow_report/get', 'none');
    const insightsServed = await answers(sandbox, 'cashflow_report/insights/get', 'none');
    expect(await itemOf(sandbox, item.item_id)).toMatchObject({ get_calls: 0, insights_calls: 0 });

    const page = await get(sandbox, item.access_token, '', 500);
    expect(page.status).toBe(200);
    const insights = await sandbox.plaid('/cashflow_report/insights/get', {
      access_token: item.access_token,
    });
    expect(insights.status).toBe(200);
    // A bad cursor still named the Item: it counts as a call, answered INVALID_FIELD.
    expect((await get(sandbox, item.access_token, 'garbage')).status).toBe(400);

    expect(await itemOf(sandbox, item.item_id)).toMatchObject({ get_calls: 2, insights_calls: 1 });
    expect((await answers(sandbox, 'cashflow_report/get', 'none')) - served).toBe(1);
    expect((await answers(sandbox, 'cashflow_report/insights/get', 'none')) - insightsServed).toBe(
      1,
    );
    expect(await answers(sandbox, 'cashflow_report/get', 'INVALID_FIELD')).toBeGreaterThan(0);
  });

  it('refuses get behaviours that do not make sense, naming the field', async () => {
    const item = await sandbox.createItem({ webhook: null });
    const cases: [unknown, string][] = [
      [{ errors: { error_code: 'NOPE', count: 1 } }, 'errors.error_code'],
      [{ errors: { error_code: 'RATE_LIMIT', count: 0 } }, 'errors.count'],
      [{ mutate_during_pagination: -1 }, 'mutate_during_pagination'],
      [{ latency_ms: 'slow' }, 'latency_ms'],
    ];
    for (const [body, field] of cases) {
      const response = await sandbox.admin('PUT', `/items/${item.item_id}/get_behaviour`, body);
      expect(response.status).toBe(400);
      expect(response.body.error).toMatchObject({ code: 'INVALID_FIELD', field });
    }
    const created = await sandbox.admin('POST', '/items', { get_behaviour: { latency: 5 } });
    expect(created.status).toBe(400);
    expect((await sandbox.admin('PUT', '/items/nope/get_behaviour', {})).status).toBe(404);
  });
});

describe('Plaid sandbox: /get latency', () => {
  it('waits the Item latency (times the time scale) before /get and /insights/get answer', async () => {
    const sandbox = await startSandbox({ PLAID_SANDBOX_TIME_SCALE: '1' });
    try {
      const item = await sandbox.createItem({ webhook: null, get_behaviour: { latency_ms: 300 } });
      let started = performance.now();
      expect((await get(sandbox, item.access_token)).status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
      started = performance.now();
      const insights = await sandbox.plaid('/cashflow_report/insights/get', {
        access_token: item.access_token,
      });
      expect(insights.status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      await sandbox.close();
    }
  });
});

describe('Plaid sandbox: /get rate limits', () => {
  it('limits /get per Item and per client when configured, answering 429 RATE_LIMIT_EXCEEDED', async () => {
    const sandbox = await startSandbox({
      PLAID_SANDBOX_GET_RATE_LIMIT_PER_ITEM: '2',
      PLAID_SANDBOX_GET_RATE_LIMIT_PER_CLIENT: '5',
      PLAID_SANDBOX_RATE_LIMIT_WINDOW_MS: '5000',
    });
    try {
      const items = await Promise.all([1, 2, 3].map(() => sandbox.createItem({ webhook: null })));
      const statuses: number[] = [];
      for (const item of items) {
        for (let i = 0; i < 3; i++) statuses.push((await get(sandbox, item.access_token)).status);
      }
      // Per Item: 2 of 3; per client: the 5th admitted call is the last.
      expect(statuses).toEqual([200, 200, 429, 200, 200, 429, 200, 429, 429]);
      const limited = await get(sandbox, items[2]!.access_token);
      expect(limited.body).toMatchObject({
        error_type: 'RATE_LIMIT_EXCEEDED',
        error_code: 'RATE_LIMIT',
        status: 429,
      });
      expect(nonConformities('PlaidError', limited.body)).toEqual([]);
      // Refused calls do not use up the window: once it passes, calls are admitted again.
      await waitFor('the window to pass', async () =>
        (await get(sandbox, items[2]!.access_token)).status === 200 ? true : undefined,
      );
    } finally {
      await sandbox.close();
    }
  });

  it('does not limit /get by default', async () => {
    const sandbox = await startSandbox();
    try {
      const item = await sandbox.createItem({ webhook: null });
      const statuses = await Promise.all(
        Array.from({ length: 30 }, () => get(sandbox, item.access_token)),
      );
      expect(statuses.every((r) => r.status === 200)).toBe(true);
    } finally {
      await sandbox.close();
    }
  });
});

describe('Plaid sandbox: get behaviour in the seed file', () => {
  it('creates seeded Items with their get behaviour', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sandbox-seed-')), 'items.json');
    writeFileSync(
      path,
      JSON.stringify([
        {
          item_id: 'seeded-get',
          access_token: 'access-sandbox-seeded-get',
          webhook: null,
          get_behaviour: { errors: { error_code: 'PRODUCT_NOT_READY', count: 1 } },
        },
      ]),
    );
    const sandbox = await startSandbox({ PLAID_SANDBOX_SEED_FILE: path });
    try {
      expect((await get(sandbox, 'access-sandbox-seeded-get')).body.error_code).toBe(
        'PRODUCT_NOT_READY',
      );
      expect((await get(sandbox, 'access-sandbox-seeded-get')).status).toBe(200);
    } finally {
      await sandbox.close();
    }
  });
});
