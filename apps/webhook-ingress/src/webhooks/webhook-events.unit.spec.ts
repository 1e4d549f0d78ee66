import { encodeEvent } from '@cashflow/contracts';
import { decideWebhook, type WebhookDecision } from './webhook-events';

const delivery = { deliveryId: 'a'.repeat(64), receivedAt: new Date('2026-11-24T10:00:00Z') };
const decide = (body: unknown) =>
  decideWebhook(Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), delivery);
const ready = {
  webhook_type: 'CASHFLOW_REPORT',
  webhook_code: 'CASHFLOW_REPORT_READY',
  item_id: 'item-1',
  error: null,
  environment: 'production',
};

function published(decision: WebhookDecision) {
  if (decision.kind !== 'publish') throw new Error(`expected publish, got ${decision.kind}`);
  return decision.event;
}

describe('decideWebhook', () => {
  it('makes CASHFLOW_REPORT_READY without an error a ReportReady that keeps every field', () => {
    const event = published(decide({ ...ready, new_field: { x: 1 } }));
    expect(event.type).toBe('ReportReady');
    expect(event.data).toEqual({
      item_id: 'item-1',
      webhook_type: 'CASHFLOW_REPORT',
      webhook_code: 'CASHFLOW_REPORT_READY',
      environment: 'production',
      received_at: '2026-11-24T10:00:00.000Z',
      delivery_id: delivery.deliveryId,
      webhook: { ...ready, new_field: { x: 1 } },
      found_by: 'webhook',
    });
    expect(() => encodeEvent(event)).not.toThrow();
  });

  it('treats a missing error like a null one', () => {
    expect(published(decide({ ...ready, error: undefined })).type).toBe('ReportReady');
  });

  it('keys on webhook_code, not webhook_type', () => {
    expect(published(decide({ ...ready, webhook_type: 'SOMETHING_ELSE' })).type).toBe(
      'ReportReady',
    );
    expect(published(decide({ ...ready, webhook_type: undefined })).data.webhook_type).toBe(
      'UNKNOWN',
    );
  });

  it('makes a webhook carrying a PlaidError a ReportFailed', () => {
    const error = {
      error_type: 'ITEM_ERROR',
      error_code: 'ITEM_LOGIN_REQUIRED',
      error_message: 'login required',
      display_message: null,
    };
    const event = published(decide({ ...ready, error }));
    expect(event.type).toBe('ReportFailed');
    expect(event.data).toMatchObject({ error });
  });

  it('refuses an error that is not a PlaidError, naming the field', () => {
    expect(decide({ ...ready, error: { error_type: 'ITEM_ERROR' } })).toMatchObject({
      kind: 'invalid',
      code: 'SCHEMA_VIOLATION',
      field: 'error.error_code',
    });
    expect(decide({ ...ready, error: 'broken' })).toMatchObject({
      kind: 'invalid',
      field: 'error',
    });
  });

  it('publishes other codes as PlaidWebhookReceived', () => {
    const event = published(
      decide({ webhook_type: 'ITEM', webhook_code: 'WEBHOOK_UPDATE_ACKNOWLEDGED', item_id: 'i' }),
    );
    expect(event.type).toBe('PlaidWebhookReceived');
    expect(event.data.environment).toBeNull();
  });

  it.each([
    ['not JSON', '{"webhook_code":', 'INVALID_JSON', 'body'],
    ['an array', '[1,2]', 'SCHEMA_VIOLATION', 'body'],
    ['null', 'null', 'SCHEMA_VIOLATION', 'body'],
    ['no webhook_code', { item_id: 'i' }, 'SCHEMA_VIOLATION', 'webhook_code'],
    ['a report without item_id', { ...ready, item_id: undefined }, 'SCHEMA_VIOLATION', 'item_id'],
    ['a report with item_id 7', { ...ready, item_id: 7 }, 'SCHEMA_VIOLATION', 'item_id'],
    [
      'control characters in item_id',
      { ...ready, item_id: 'a\u0000b' },
      'SCHEMA_VIOLATION',
      'item_id',
    ],
  ])('refuses %s', (_name, body, code, field) => {
    expect(decide(body)).toMatchObject({ kind: 'invalid', code, field });
  });

  it('records, rather than refuses, another code without an item_id', () => {
    expect(decide({ webhook_type: 'LINK', webhook_code: 'SESSION_FINISHED' })).toMatchObject({
      kind: 'record',
      code: 'UNROUTABLE_WEBHOOK',
      field: 'item_id',
    });
  });

  it('gives one delivery the same event id every time, and another delivery another', () => {
    const body = Buffer.from(JSON.stringify(ready));
    const first = published(decideWebhook(body, delivery));
    const again = published(decideWebhook(body, { ...delivery, receivedAt: new Date() }));
    const other = published(decideWebhook(body, { ...delivery, deliveryId: 'b'.repeat(64) }));
    expect(again.metadata.id).toBe(first.metadata.id);
    expect(other.metadata.id).not.toBe(first.metadata.id);
  });

  it('does not let __proto__ in a body reach any prototype', () => {
    const event = published(
      decide(`{"__proto__":{"polluted":true},${JSON.stringify(ready).slice(1)}`),
    );
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    expect(() => encodeEvent(event)).not.toThrow();
  });
});
