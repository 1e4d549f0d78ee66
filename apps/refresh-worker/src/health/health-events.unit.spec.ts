import {
  INGRESS_SOURCE,
  WORKER_SOURCE,
  createEvent,
  encodeEvent,
  type PlaidWebhookReceived,
  type RefreshFailed,
} from '@cashflow/contracts';
import { changeEvent, outcomeFact, reportFact, tokenFact, webhookFact } from './health-events';

const at = '2026-12-01T10:00:00.000Z';

function webhook(body: Record<string, unknown>): PlaidWebhookReceived {
  return createEvent(
    'PlaidWebhookReceived',
    {
      item_id: 'item-1',
      webhook_type: String(body.webhook_type),
      webhook_code: String(body.webhook_code),
      environment: 'sandbox',
      received_at: at,
      delivery_id: 'd-1',
      webhook: { item_id: 'item-1', environment: 'sandbox', ...body },
    },
    { id: 'w-1', source: 'urn:cashflow-refresh:webhook-ingress', time: at },
  );
}

function failed(error: RefreshFailed['data']['error'], source = WORKER_SOURCE): RefreshFailed {
  return createEvent(
    'RefreshFailed',
    {
      item_id: 'item-1',
      refresh_request_id: 'r-1',
      days_requested: 365,
      error,
      retryable: false,
      attempts: error.source === 'plaid' ? 1 : 0,
      failed_at: at,
    },
    { id: 'o-1', source, time: at },
  );
}

describe('Item health facts (health-events)', () => {
  it('reads an ERROR webhook with its PlaidError, named by the error code', () => {
    const fact = webhookFact(
      webhook({
        webhook_type: 'ITEM',
        webhook_code: 'ERROR',
        error: {
          error_type: 'ITEM_ERROR',
          error_code: 'ITEM_LOGIN_REQUIRED',
          error_message: 'login details changed',
          display_message: null,
        },
      }),
    );
    expect(fact).toEqual({
      itemId: 'item-1',
      fact: {
        kind: 'item_webhook',
        code: 'ERROR',
        error: { error_type: 'ITEM_ERROR', error_code: 'ITEM_LOGIN_REQUIRED' },
        until: null,
        at,
      },
      cause: { kind: 'item_webhook', code: 'ITEM_LOGIN_REQUIRED', event_id: 'w-1' },
    });
  });

  it('reads the date of PENDING_EXPIRATION and PENDING_DISCONNECT', () => {
    const until = '2026-12-08T10:00:00Z';
    expect(
      webhookFact(
        webhook({
          webhook_type: 'ITEM',
          webhook_code: 'PENDING_EXPIRATION',
          consent_expiration_time: until,
        }),
      )?.fact,
    ).toMatchObject({ code: 'PENDING_EXPIRATION', until });
    expect(
      webhookFact(
        webhook({
          webhook_type: 'ITEM',
          webhook_code: 'PENDING_DISCONNECT',
          reason: 'INSTITUTION_MIGRATION',
          disconnect_time: until,
        }),
      )?.fact,
    ).toMatchObject({ code: 'PENDING_DISCONNECT', until });
    expect(
      webhookFact(
        webhook({
          webhook_type: 'ITEM',
          webhook_code: 'PENDING_EXPIRATION',
          consent_expiration_time: 'soon',
        }),
      )?.fact,
    ).toMatchObject({ until: null });
  });

  it('ignores webhooks of other types', () => {
    expect(
      webhookFact(
        webhook({ webhook_type: 'TRANSACTIONS', webhook_code: 'SYNC_UPDATES_AVAILABLE' }),
      ),
    ).toBeNull();
  });

  it("reads Plaid's errors from the worker's own outcomes, and nothing from failures without a Plaid answer", () => {
    const plaid = failed({
      source: 'plaid',
      error_type: 'ITEM_ERROR',
      error_code: 'ITEM_LOGIN_REQUIRED',
      error_message: 'login details changed',
      display_message: null,
      plaid_request_id: 'req-1',
      http_status: 400,
    });
    expect(outcomeFact(plaid)?.fact).toEqual({
      kind: 'refresh_failed',
      error: { error_type: 'ITEM_ERROR', error_code: 'ITEM_LOGIN_REQUIRED' },
      at,
    });
    // A refusal for the Item's health, a time-out: the worker's words, not Plaid's.
    const refused = failed({
      source: 'worker',
      error_code: 'ITEM_LOGIN_REQUIRED',
      error_message: 'not sent to Plaid',
    });
    expect(outcomeFact(refused)).toBeNull();
    // An outcome someone else published on the topic is no fact the worker vouches for.
    expect(
      outcomeFact({ ...plaid, metadata: { ...plaid.metadata, source: 'urn:elsewhere' } }),
    ).toBeNull();
  });

  it("reads a ReportFailed's error from the ingress, and none from elsewhere", () => {
    const error = {
      error_type: 'ITEM_ERROR',
      error_code: 'ITEM_LOGIN_REQUIRED',
      error_message: 'login details changed',
    };
    const report = createEvent(
      'ReportFailed',
      {
        item_id: 'item-1',
        webhook_type: 'CASHFLOW_REPORT',
        webhook_code: 'CASHFLOW_REPORT_READY',
        environment: 'sandbox',
        received_at: at,
        delivery_id: 'd-2',
        webhook: { item_id: 'item-1', error },
        error,
      },
      { id: 'x-1', source: INGRESS_SOURCE, time: at },
    );
    expect(reportFact(report)).toEqual({
      itemId: 'item-1',
      fact: {
        kind: 'report_failed',
        error: { error_type: 'ITEM_ERROR', error_code: 'ITEM_LOGIN_REQUIRED' },
        at,
      },
      cause: { kind: 'report_failed', code: 'ITEM_LOGIN_REQUIRED', event_id: 'x-1' },
    });
    expect(
      reportFact({ ...report, metadata: { ...report.metadata, source: 'urn:elsewhere' } }),
    ).toBeNull();
  });

  it('publishes a change as a valid ItemNeedsAttention or ItemHealthRestored naming its cause', () => {
    const fact = tokenFact('item-1', new Date(at));
    const bad = changeEvent(
      'needs_attention',
      fact,
      { status: 'healthy' },
      { status: 'revoked', reason: 'USER_PERMISSION_REVOKED' },
      1,
      new Date(at),
    );
    expect(bad.type).toBe('ItemNeedsAttention');
    expect(bad.data).toMatchObject({
      item_id: 'item-1',
      health: { status: 'revoked', reason: 'USER_PERMISSION_REVOKED', consent_expires_at: null },
      previous: { status: 'healthy', reason: null, consent_expires_at: null },
      cause: { kind: 'token_registered', code: null, event_id: null },
      changed_at: at,
    });
    const good = changeEvent(
      'restored',
      fact,
      { status: 'needs_user_action', reason: 'ITEM_LOCKED' },
      { status: 'healthy' },
      2,
      new Date(at),
    );
    expect(good.type).toBe('ItemHealthRestored');
    // Both encode: the contract's schema accepts them.
    expect(() => encodeEvent(bad)).not.toThrow();
    expect(() => encodeEvent(good)).not.toThrow();
  });
});
