import { isAxiosError } from 'axios';
import { Configuration, PlaidApi } from 'plaid';
import { CREDENTIALS, startSandbox, type Sandbox } from '../../support/plaid-sandbox';

/** Plaid's official Node client, pointed at the sandbox's base URL, works unchanged. */
describe('the official plaid client against the sandbox', () => {
  let sandbox: Sandbox;
  let client: PlaidApi;

  beforeAll(async () => {
    sandbox = await startSandbox();
    client = new PlaidApi(
      new Configuration({
        basePath: sandbox.url,
        baseOptions: {
          headers: { 'PLAID-CLIENT-ID': CREDENTIALS.client_id, 'PLAID-SECRET': CREDENTIALS.secret },
        },
      }),
    );
  });
  afterAll(() => sandbox.close());

  it('refreshes, reads the report, its transactions and insights, and fetches a verification key', async () => {
    const item = await sandbox.createItem({ webhook: null });

    const refreshed = await client.cashflowReportRefresh({
      access_token: item.access_token,
      days_requested: 90,
    });
    expect(refreshed.data.request_id).toEqual(expect.any(String));

    const report = await client.cashflowReportGet({
      access_token: item.access_token,
      days_requested: 90,
      count: 10,
      cursor: '',
    });
    expect(report.data.transactions).toHaveLength(10);
    expect(report.data.item.item_id).toBe(item.item_id);
    const next = await client.cashflowReportGet({
      access_token: item.access_token,
      days_requested: 90,
      count: 10,
      cursor: report.data.next_cursor,
    });
    expect(next.data.transactions[0]?.transaction_id).not.toBe(
      report.data.transactions[0]?.transaction_id,
    );

    const transactions = await client.cashflowReportTransactionsGet({
      access_token: item.access_token,
      count: 5,
    });
    expect(transactions.data.transactions).toHaveLength(5);

    const insights = await client.cashflowReportInsightsGet({ access_token: item.access_token });
    expect(insights.data.account_insights.monthly_summaries.length).toBeGreaterThan(0);

    const { body } = await sandbox.admin('GET', '/webhook_keys');
    const key = await client.webhookVerificationKeyGet({ key_id: body.keys[0].kid });
    expect(key.data.key.alg).toBe('ES256');
  });

  it("surfaces the sandbox's errors the way it surfaces Plaid's", async () => {
    const error: unknown = await client
      .cashflowReportRefresh({ access_token: 'access-sandbox-unknown', days_requested: 30 })
      .catch((e: unknown) => e);
    if (!isAxiosError(error)) throw new Error('expected an HTTP error');
    expect(error.response?.status).toBe(400);
    expect(error.response?.data).toMatchObject({
      error_type: 'INVALID_INPUT',
      error_code: 'INVALID_ACCESS_TOKEN',
    });
  });
});
