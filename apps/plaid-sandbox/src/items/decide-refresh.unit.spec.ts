import { decideRefresh } from './decide-refresh';
import { DEFAULT_GET_BEHAVIOUR } from './get-behaviour';
import { CAPITAL_ONE, type Behaviour, type SandboxItem } from './item';

function item(
  overrides: Partial<SandboxItem> = {},
  behaviour: Behaviour = { kind: 'success' },
): SandboxItem {
  return {
    item_id: 'item-1',
    access_token: 'access-sandbox-1',
    institution_id: 'ins_109508',
    institution_name: 'First Platypus Bank',
    accounts: [
      {
        account_id: 'a',
        name: 'Checking',
        type: 'depository',
        subtype: 'checking',
        mask: '0000',
        current_balance: 1,
      },
    ],
    cashflow_report_enabled: true,
    behaviour,
    webhook: null,
    seed: 1,
    transactions_per_account: 1,
    as_of: '2026-11-24',
    created_at: '2026-11-24T00:00:00Z',
    refresh_calls: 0,
    last_successful_update_time: '2026-11-24T00:00:00Z',
    generation: 0,
    get_behaviour: DEFAULT_GET_BEHAVIOUR,
    get_calls: 0,
    insights_calls: 0,
    ...overrides,
  };
}

describe('decideRefresh', () => {
  it('accepts by default, with a clean webhook', () => {
    expect(decideRefresh(item(), 1)).toEqual({ kind: 'accept', webhookError: null });
  });

  it('applies product rules before the behaviour', () => {
    const disabled = item({ cashflow_report_enabled: false }, { kind: 'timeout' });
    expect(decideRefresh(disabled, 1)).toEqual({ kind: 'fail', code: 'PRODUCT_NOT_ENABLED' });
    const capitalOneCredit = item({
      institution_id: CAPITAL_ONE,
      accounts: [
        {
          account_id: 'c',
          name: 'Card',
          type: 'credit',
          subtype: 'credit card',
          mask: '1111',
          current_balance: 1,
        },
      ],
    });
    expect(decideRefresh(capitalOneCredit, 1)).toEqual({
      kind: 'fail',
      code: 'PRODUCTS_NOT_SUPPORTED',
    });
    expect(decideRefresh(item({ institution_id: CAPITAL_ONE }), 1).kind).toBe('accept');
  });

  it('fails the first N calls of a transient behaviour, then accepts', () => {
    const flaky = item({}, { kind: 'transient', error_code: 'PLANNED_MAINTENANCE', failures: 2 });
    expect([1, 2, 3].map((n) => decideRefresh(flaky, n).kind)).toEqual(['fail', 'fail', 'accept']);
  });

  it('maps each behaviour to its answer', () => {
    expect(decideRefresh(item({}, { kind: 'item_login_required' }), 1)).toEqual({
      kind: 'fail',
      code: 'ITEM_LOGIN_REQUIRED',
    });
    expect(decideRefresh(item({}, { kind: 'institution_down' }), 1)).toEqual({
      kind: 'fail',
      code: 'INSTITUTION_DOWN',
    });
    expect(decideRefresh(item({}, { kind: 'timeout' }), 1)).toEqual({ kind: 'hang' });
    expect(
      decideRefresh(item({}, { kind: 'webhook_error', error_code: 'INSTITUTION_DOWN' }), 1),
    ).toEqual({
      kind: 'accept',
      webhookError: 'INSTITUTION_DOWN',
    });
  });
});
