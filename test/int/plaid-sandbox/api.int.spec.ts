import {
  PLAID_ERROR_CODES,
  plaidErrorBody,
} from '../../../apps/plaid-sandbox/src/plaid-api/plaid-errors';
import { nonConformities } from '../../support/plaid-schemas';
import { CREDENTIALS, startSandbox, type Sandbox } from '../../support/plaid-sandbox';

describe('Plaid sandbox API over HTTP: wire format', () => {
  let sandbox: Sandbox;
  let token: string;

  beforeAll(async () => {
    sandbox = await startSandbox();
    token = (await sandbox.createItem({ webhook: null })).access_token;
  });
  afterAll(() => sandbox.close());

  /** Every error is a complete PlaidError per Plaid's schema, with a request_id and its status. */
  function expectPlaidError(
    response: { status: number; body: Record<string, unknown> },
    status: number,
    code: string,
  ) {
    expect({ status: response.status, code: response.body.error_code }).toEqual({ status, code });
    expect(nonConformities('PlaidError', response.body)).toEqual([]);
    expect(response.body.request_id).toMatch(/^[A-Za-z0-9]{15}$/);
    expect(response.body.status).toBe(status);
  }

  it('validates its own conformance check: a broken body does not pass', () => {
    expect(nonConformities('CashflowReportRefreshResponse', {})).not.toEqual([]);
    expect(
      nonConformities('PlaidError', {
        error_type: 'NOT_A_TYPE',
        error_code: 'X',
        error_message: 'm',
        display_message: null,
      }),
    ).not.toEqual([]);
  });

  it('accepts a refresh with credentials in the body and answers per the spec', async () => {
    const response = await sandbox.plaid('/cashflow_report/refresh', {
      access_token: token,
      days_requested: 30,
    });
    expect(response.status).toBe(200);
    expect(nonConformities('CashflowReportRefreshResponse', response.body)).toEqual([]);
  });

  it('accepts credentials in the PLAID-CLIENT-ID / PLAID-SECRET headers', async () => {
    const response = await sandbox.raw(
      '/cashflow_report/refresh',
      { access_token: token },
      { 'PLAID-CLIENT-ID': CREDENTIALS.client_id, 'PLAID-SECRET': CREDENTIALS.secret },
    );
    expect(response.status).toBe(200);
  });

  it('rejects wrong credentials with INVALID_API_KEYS and missing ones with MISSING_FIELDS', async () => {
    expectPlaidError(
      await sandbox.raw('/cashflow_report/refresh', {
        client_id: CREDENTIALS.client_id,
        secret: 'wrong',
        access_token: token,
      }),
      400,
      'INVALID_API_KEYS',
    );
    const missing = await sandbox.raw('/cashflow_report/refresh', { access_token: token });
    expectPlaidError(missing, 400, 'MISSING_FIELDS');
    expect(missing.body.error_message).toContain('client_id, secret');
  });

  it.each([
    [{}, 'MISSING_FIELDS', /access_token/],
    [{ access_token: 'x', days_requested: 0 }, 'INVALID_FIELD', /days_requested/],
    [{ access_token: 'x', days_requested: 731 }, 'INVALID_FIELD', /days_requested/],
    [
      { access_token: 'x', days_requested: 30.5 },
      'INVALID_FIELD',
      /days_requested: must be an integer/,
    ],
    [{ access_token: 'x', days_requested: '30' }, 'INVALID_FIELD', /days_requested/],
    [{ access_token: 'x', favourite_colour: 'blue' }, 'UNKNOWN_FIELDS', /favourite_colour/],
  ])('rejects an invalid refresh request %j with %s', async (body, code, message) => {
    const response = await sandbox.plaid('/cashflow_report/refresh', body);
    expectPlaidError(response, 400, code);
    expect(response.body.error_type).toBe('INVALID_REQUEST');
    expect(response.body.error_message).toMatch(message);
  });

  it('rejects malformed JSON with INVALID_BODY and an unknown token with INVALID_ACCESS_TOKEN', async () => {
    expectPlaidError(
      await sandbox.raw('/cashflow_report/refresh', '{"access_token":'),
      400,
      'INVALID_BODY',
    );
    expectPlaidError(
      await sandbox.plaid('/cashflow_report/refresh', { access_token: 'access-sandbox-unknown' }),
      400,
      'INVALID_ACCESS_TOKEN',
    );
  });

  it('answers an unknown path with a Plaid NOT_FOUND error', async () => {
    expectPlaidError(await sandbox.plaid('/cashflow_report/nope', {}), 404, 'NOT_FOUND');
  });

  it('serves every error in its catalogue as a schema-valid PlaidError', () => {
    for (const code of PLAID_ERROR_CODES) {
      expect({
        code,
        problems: nonConformities('PlaidError', plaidErrorBody(code, 'req0000000000000')),
      }).toEqual({ code, problems: [] });
    }
  });

  it('pages /cashflow_report/get with cursor and count, stably, within days_requested', async () => {
    const pages: { transactions: { transaction_id: string; date: string }[] }[] = [];
    let cursor = '';
    for (;;) {
      const response = await sandbox.plaid('/cashflow_report/get', {
        access_token: token,
        days_requested: 120,
        count: 25,
        cursor,
      });
      expect(response.status).toBe(200);
      expect(nonConformities('CashflowReportGetResponse', response.body)).toEqual([]);
      pages.push(response.body);
      cursor = response.body.next_cursor;
      if (!response.body.has_more) break;
    }
    const paged = pages.flatMap((p) => p.transactions);
    const whole = await sandbox.plaid('/cashflow_report/get', {
      access_token: token,
      days_requested: 120,
      count: 500,
    });
    expect(paged.map((t) => t.transaction_id)).toEqual(
      whole.body.transactions.map((t: { transaction_id: string }) => t.transaction_id),
    );
    expect(whole.body.total_transactions).toBe(paged.length);
    expect(pages.length).toBe(Math.ceil(paged.length / 25));

    const dates = paged.map((t) => t.date);
    expect([...dates].sort().reverse()).toEqual(dates);
    const asOf = new Date(whole.body.last_successful_update_time as string);
    const oldest = new Date(`${dates[dates.length - 1]}T00:00:00Z`);
    expect((asOf.getTime() - oldest.getTime()) / 86_400_000).toBeLessThan(120);

    const again = await sandbox.plaid('/cashflow_report/get', {
      access_token: token,
      days_requested: 120,
      count: 25,
      cursor: '',
    });
    expect(again.body.transactions).toEqual(pages[0]!.transactions);
  });

  it('filters by account_ids and rejects an account of another Item', async () => {
    const item = await sandbox.createItem({ webhook: null });
    const accountId = item.accounts[0]!.account_id;
    const response = await sandbox.plaid('/cashflow_report/get', {
      access_token: item.access_token,
      days_requested: 730,
      count: 500,
      options: { account_ids: [accountId] },
    });
    expect(response.body.accounts.map((a: { account_id: string }) => a.account_id)).toEqual([
      accountId,
    ]);
    expect(
      new Set(response.body.transactions.map((t: { account_id: string }) => t.account_id)),
    ).toEqual(new Set([accountId]));

    const other = await sandbox.plaid('/cashflow_report/get', {
      access_token: token,
      days_requested: 730,
      options: { account_ids: [accountId] },
    });
    expectPlaidError(other, 400, 'INVALID_FIELD');
  });

  it('requires days_requested on /cashflow_report/get but not on /transactions/get', async () => {
    expectPlaidError(
      await sandbox.plaid('/cashflow_report/get', { access_token: token }),
      400,
      'MISSING_FIELDS',
    );
    const response = await sandbox.plaid('/cashflow_report/transactions/get', {
      access_token: token,
      count: 10,
    });
    expect(response.status).toBe(200);
    expect(nonConformities('CashflowReportTransactionsGetResponse', response.body)).toEqual([]);
    expect(response.body.has_more).toBe(true);
    expect(response.body).not.toHaveProperty('last_successful_update_time');
  });

  it('rejects a cursor it did not issue', async () => {
    expectPlaidError(
      await sandbox.plaid('/cashflow_report/transactions/get', {
        access_token: token,
        cursor: 'garbage',
      }),
      400,
      'INVALID_FIELD',
    );
  });

  it('serves insights for credit and depository accounts per the spec', async () => {
    const item = await sandbox.createItem({
      webhook: null,
      accounts: [
        { name: 'Checking', type: 'depository', subtype: 'checking' },
        { name: 'Card', type: 'credit', subtype: 'credit card' },
        { name: 'Mortgage', type: 'loan', subtype: 'mortgage' },
      ],
    });
    const response = await sandbox.plaid('/cashflow_report/insights/get', {
      access_token: item.access_token,
    });
    expect(response.status).toBe(200);
    expect(nonConformities('CashflowReportInsightsGetResponse', response.body)).toEqual([]);
    expect(response.body.accounts.map((a: { type: string }) => a.type)).toEqual([
      'depository',
      'credit',
    ]);
    expect(response.body.account_insights.historical_balances).toHaveLength(90);
    expect(response.body.account_insights.monthly_summaries).toHaveLength(12);
  });

  it('generates the same data for the same Item and seed, in another sandbox too', async () => {
    const other = await startSandbox();
    try {
      const input = { item_id: 'item-deterministic', seed: 7, webhook: null };
      const a = await sandbox.createItem(input);
      const b = await other.createItem(input);
      const page = (s: Sandbox, t: string) =>
        s.plaid('/cashflow_report/get', { access_token: t, days_requested: 730, count: 500 });
      expect((await page(other, b.access_token)).body.transactions).toEqual(
        (await page(sandbox, a.access_token)).body.transactions,
      );
      const differentSeed = await other.createItem({
        item_id: 'item-deterministic-2',
        seed: 8,
        webhook: null,
      });
      expect((await page(other, differentSeed.access_token)).body.transactions).not.toEqual(
        (await page(sandbox, a.access_token)).body.transactions,
      );
    } finally {
      await other.close();
    }
  });

  it('serves the webhook verification key as a JWK per the spec', async () => {
    const { body } = await sandbox.admin('GET', '/webhook_keys');
    const kid = body.keys[0].kid as string;
    const response = await sandbox.plaid('/webhook_verification_key/get', { key_id: kid });
    expect(response.status).toBe(200);
    expect(nonConformities('WebhookVerificationKeyGetResponse', response.body)).toEqual([]);
    expect(response.body.key).toMatchObject({
      alg: 'ES256',
      crv: 'P-256',
      kty: 'EC',
      use: 'sig',
      kid,
      expired_at: null,
    });
    expectPlaidError(
      await sandbox.plaid('/webhook_verification_key/get', { key_id: 'nope' }),
      400,
      'INVALID_FIELD',
    );
  });
});
