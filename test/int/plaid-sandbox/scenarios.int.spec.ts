import { PlaidClient } from '@cashflow/plaid-client';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CREDENTIALS, startSandbox, type Sandbox } from '../../support/plaid-sandbox';

const refresh = (sandbox: Sandbox, token: string) =>
  sandbox.plaid('/cashflow_report/refresh', { access_token: token, days_requested: 30 });

describe('Plaid sandbox scenarios', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    // Generous rate limits here; the rate-limit scenarios start their own sandbox.
    sandbox = await startSandbox({
      PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '100',
      PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '1000',
    });
  });
  afterAll(() => sandbox.close());

  it('refuses Capital One Items with only non-depository accounts with PRODUCTS_NOT_SUPPORTED', async () => {
    const creditOnly = await sandbox.createItem({
      institution_id: 'ins_128026',
      institution_name: 'Capital One',
      accounts: [{ name: 'Quicksilver', type: 'credit', subtype: 'credit card' }],
      webhook: null,
    });
    const response = await refresh(sandbox, creditOnly.access_token);
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({
      error_type: 'ITEM_ERROR',
      error_code: 'PRODUCTS_NOT_SUPPORTED',
    });

    const withChecking = await sandbox.createItem({
      institution_id: 'ins_128026',
      accounts: [
        { name: 'Quicksilver', type: 'credit', subtype: 'credit card' },
        { name: '360 Checking', type: 'depository', subtype: 'checking' },
      ],
      webhook: null,
    });
    expect((await refresh(sandbox, withChecking.access_token)).status).toBe(200);
  });

  it.each([
    [{ cashflow_report_enabled: false }, 400, 'ITEM_ERROR', 'PRODUCT_NOT_ENABLED'],
    [
      { behaviour: { kind: 'item_login_required' as const } },
      400,
      'ITEM_ERROR',
      'ITEM_LOGIN_REQUIRED',
    ],
    [
      { behaviour: { kind: 'institution_down' as const } },
      400,
      'INSTITUTION_ERROR',
      'INSTITUTION_DOWN',
    ],
  ])('answers an Item set up with %j with %i %s/%s', async (setup, status, type, code) => {
    const item = await sandbox.createItem({ ...setup, webhook: null });
    const response = await refresh(sandbox, item.access_token);
    expect(response.status).toBe(status);
    expect(response.body).toMatchObject({ error_type: type, error_code: code, status });
    expect(response.body).toHaveProperty('display_message');
  });

  it.each([
    ['INTERNAL_SERVER_ERROR' as const, 500, 2],
    ['PLANNED_MAINTENANCE' as const, 503, 1],
  ])('fails the first calls with %s (%i), then succeeds', async (code, status, failures) => {
    const item = await sandbox.createItem({
      behaviour: { kind: 'transient', error_code: code, failures },
      webhook: null,
    });
    const answers: number[] = [];
    for (let i = 0; i < failures + 2; i++) {
      const response = await refresh(sandbox, item.access_token);
      answers.push(response.status);
      if (response.status !== 200)
        expect(response.body).toMatchObject({ error_type: 'API_ERROR', error_code: code });
    }
    expect(answers).toEqual([...Array<number>(failures).fill(status), 200, 200]);
  });

  it('lets a scenario change an Item behaviour later, restarting its call count', async () => {
    const item = await sandbox.createItem({ webhook: null });
    expect((await refresh(sandbox, item.access_token)).status).toBe(200);
    const changed = await sandbox.admin('PUT', `/items/${item.item_id}/behaviour`, {
      kind: 'transient',
      error_code: 'INTERNAL_SERVER_ERROR',
      failures: 1,
    });
    expect(changed.status).toBe(200);
    expect((await refresh(sandbox, item.access_token)).status).toBe(500);
    expect((await refresh(sandbox, item.access_token)).status).toBe(200);
    const bad = await sandbox.admin('PUT', `/items/${item.item_id}/behaviour`, { kind: 'explode' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('kind');
  });

  it('never answers a refresh for an Item that times out', async () => {
    const item = await sandbox.createItem({ behaviour: { kind: 'timeout' }, webhook: null });
    const client = new PlaidClient({
      baseUrl: sandbox.url,
      clientId: CREDENTIALS.client_id,
      secret: CREDENTIALS.secret,
      headersTimeoutMs: 300,
    });
    try {
      const result = await client.refreshCashflowReport(item.access_token, 30);
      expect(result).toMatchObject({ ok: false, error: { kind: 'timeout', phase: 'headers' } });
    } finally {
      await client.close();
    }
  });

  it('rejects items it cannot create, naming the field', async () => {
    const response = await sandbox.admin('POST', '/items', {
      accounts: [{ name: 'x', type: 'savings' }],
    });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'INVALID_FIELD', field: 'accounts.0.type' });
    const token = (await sandbox.createItem({ item_id: 'dup', webhook: null })).access_token;
    expect(token).toMatch(/^access-sandbox-[0-9a-f-]{36}$/);
    expect((await sandbox.admin('POST', '/items', { item_id: 'dup' })).status).toBe(409);
  });
});

describe('Plaid sandbox latency', () => {
  it('waits the configured latency before answering a refresh', async () => {
    const sandbox = await startSandbox({
      PLAID_SANDBOX_REFRESH_LATENCY: 'fixed:400',
      PLAID_SANDBOX_TIME_SCALE: '1',
    });
    try {
      const item = await sandbox.createItem({ webhook: null });
      const started = performance.now();
      expect((await refresh(sandbox, item.access_token)).status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(390);
      // Validation failures are answered before the institution is asked: no latency.
      const quick = performance.now();
      expect((await sandbox.plaid('/cashflow_report/refresh', {})).status).toBe(400);
      expect(performance.now() - quick).toBeLessThan(390);
    } finally {
      await sandbox.close();
    }
  });

  it('refuses to start with a latency it cannot parse, naming the variable', async () => {
    await expect(startSandbox({ PLAID_SANDBOX_REFRESH_LATENCY: 'gaussian:5' })).rejects.toThrow(
      /PLAID_SANDBOX_REFRESH_LATENCY: "gaussian:5"/,
    );
  });
});

describe('Plaid sandbox injected faults', () => {
  it('answers a share of refresh calls 500 and holds a share open, for every Item, until turned off', async () => {
    const sandbox = await startSandbox({
      PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '1000',
      PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '1000',
    });
    const client = new PlaidClient({
      baseUrl: sandbox.url,
      clientId: CREDENTIALS.client_id,
      secret: CREDENTIALS.secret,
      headersTimeoutMs: 300,
    });
    try {
      const item = await sandbox.createItem({ webhook: null });
      const set = await sandbox.admin('PUT', '/faults', { error_rate: 0.5, timeout_rate: 0.25 });
      expect(set.body.faults).toEqual({
        error_rate: 0.5,
        timeout_rate: 0.25,
        refresh_latency: 'fixed:0',
      });
      const results = await Promise.all(
        Array.from({ length: 200 }, () => client.refreshCashflowReport(item.access_token, 30)),
      );
      const kinds = results.map((r) =>
        r.ok ? 'ok' : r.error.kind === 'plaid' ? r.error.error.error_code : r.error.kind,
      );
      const count = (k: string) => kinds.filter((x) => x === k).length;
      expect(count('INTERNAL_SERVER_ERROR')).toBeGreaterThan(60);
      expect(count('timeout')).toBeGreaterThan(20);
      expect(count('ok')).toBeGreaterThan(20);
      expect(count('ok') + count('timeout') + count('INTERNAL_SERVER_ERROR')).toBe(200);
      const failed = results.find((r) => !r.ok && r.error.kind === 'plaid');
      expect(failed).toMatchObject({
        error: { httpStatus: 500, error: { error_type: 'API_ERROR' } },
      });

      await sandbox.admin('PUT', '/faults', { error_rate: 0, timeout_rate: 0 });
      const after = await Promise.all(
        Array.from({ length: 20 }, () => client.refreshCashflowReport(item.access_token, 30)),
      );
      expect(after.every((r) => r.ok)).toBe(true);
    } finally {
      await client.close();
      await sandbox.close();
    }
  });

  it('changes the latency of every call at run time', async () => {
    const sandbox = await startSandbox({ PLAID_SANDBOX_TIME_SCALE: '1' });
    try {
      const item = await sandbox.createItem({ webhook: null });
      await sandbox.admin('PUT', '/faults', { refresh_latency: 'fixed:400' });
      const started = performance.now();
      expect((await refresh(sandbox, item.access_token)).status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(390);
      expect((await sandbox.admin('GET', '/faults')).body.faults.refresh_latency).toBe('fixed:400');
    } finally {
      await sandbox.close();
    }
  });

  it('refuses faults that do not make sense, naming the field', async () => {
    const sandbox = await startSandbox();
    try {
      const over = await sandbox.admin('PUT', '/faults', { error_rate: 0.8, timeout_rate: 0.3 });
      expect(over.status).toBe(400);
      expect(over.body.error).toMatchObject({ code: 'INVALID_FIELD', field: 'timeout_rate' });
      const latency = await sandbox.admin('PUT', '/faults', { refresh_latency: 'soon' });
      expect(latency.body.error).toMatchObject({ field: 'refresh_latency' });
      const unknown = await sandbox.admin('PUT', '/faults', { error_rates: 1 });
      expect(unknown.status).toBe(400);
      expect((await sandbox.admin('GET', '/faults')).body.faults).toMatchObject({
        error_rate: 0,
        timeout_rate: 0,
      });
    } finally {
      await sandbox.close();
    }
    await expect(
      startSandbox({
        PLAID_SANDBOX_FAULT_ERROR_RATE: '0.9',
        PLAID_SANDBOX_FAULT_TIMEOUT_RATE: '0.2',
      }),
    ).rejects.toThrow(/PLAID_SANDBOX_FAULT_TIMEOUT_RATE/);
  });
});

describe('Plaid sandbox rate limits', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startSandbox({
      PLAID_SANDBOX_RATE_LIMIT_PER_ITEM: '2',
      PLAID_SANDBOX_RATE_LIMIT_PER_CLIENT: '5',
      PLAID_SANDBOX_RATE_LIMIT_WINDOW_MS: '1500',
    });
  });
  afterAll(() => sandbox.close());

  it('allows two refreshes per Item per window, then answers 429 RATE_LIMIT_EXCEEDED until the window passes', async () => {
    const item = await sandbox.createItem({ webhook: null });
    const first = await Promise.all([1, 2, 3].map(() => refresh(sandbox, item.access_token)));
    expect(first.map((r) => r.status).sort()).toEqual([200, 200, 429]);
    const limited = first.find((r) => r.status === 429)!;
    expect(limited.body).toMatchObject({
      error_type: 'RATE_LIMIT_EXCEEDED',
      error_code: 'RATE_LIMIT',
      status: 429,
    });

    await new Promise((resolve) => setTimeout(resolve, 1600));
    expect((await refresh(sandbox, item.access_token)).status).toBe(200);
  });

  it('limits the client across Items', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1600));
    const items = await Promise.all([1, 2, 3, 4].map(() => sandbox.createItem({ webhook: null })));
    const statuses: number[] = [];
    for (const item of items) {
      for (let i = 0; i < 2; i++) statuses.push((await refresh(sandbox, item.access_token)).status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
  });
});

describe('Plaid sandbox seed file', () => {
  function seedFile(items: unknown): string {
    const path = join(mkdtempSync(join(tmpdir(), 'sandbox-seed-')), 'items.json');
    writeFileSync(path, JSON.stringify(items));
    return path;
  }

  it('creates the Items of PLAID_SANDBOX_SEED_FILE at start', async () => {
    const path = seedFile([
      { item_id: 'seeded-ok', access_token: 'access-sandbox-seeded-ok', webhook: null },
      {
        item_id: 'seeded-login',
        access_token: 'access-sandbox-seeded-login',
        behaviour: { kind: 'item_login_required' },
        webhook: null,
      },
    ]);
    const sandbox = await startSandbox({ PLAID_SANDBOX_SEED_FILE: path });
    try {
      expect((await refresh(sandbox, 'access-sandbox-seeded-ok')).status).toBe(200);
      expect((await refresh(sandbox, 'access-sandbox-seeded-login')).body.error_code).toBe(
        'ITEM_LOGIN_REQUIRED',
      );
      const { body } = await sandbox.admin('GET', '/items');
      expect(body.items.map((i: { item_id: string }) => i.item_id)).toEqual([
        'seeded-ok',
        'seeded-login',
      ]);
    } finally {
      await sandbox.close();
    }
  });

  it('refuses to start with an invalid seed file, naming the field', async () => {
    const path = seedFile([
      { item_id: 'x', behaviour: { kind: 'transient', error_code: 'INTERNAL_SERVER_ERROR' } },
    ]);
    await expect(startSandbox({ PLAID_SANDBOX_SEED_FILE: path })).rejects.toThrow(
      /^seed file .*items\.json: item 0: behaviour\.failures: /,
    );
  });
});
