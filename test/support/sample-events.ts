import { randomUUID } from 'node:crypto';
import {
  createEvent,
  type CashflowEvent,
  type EventType,
  type RefreshRequested,
} from '@cashflow/contracts';

const time = '2026-11-24T10:00:00.000Z';

/** A valid event of each type for one Item, with fresh ids. */
export function sampleEvent(type: EventType, itemId = `item-${randomUUID()}`): CashflowEvent {
  const requestId = randomUUID();
  const meta = { id: randomUUID(), source: 'urn:cashflow-refresh:test', time };
  const answering = { ...meta, correlationId: requestId, causationId: requestId };
  const webhook = {
    webhook_type: 'CASHFLOW_REPORT',
    webhook_code: 'CASHFLOW_REPORT_READY',
    item_id: itemId,
    error: null,
    environment: 'sandbox',
  };
  const delivery = {
    item_id: itemId,
    webhook_type: 'CASHFLOW_REPORT',
    webhook_code: 'CASHFLOW_REPORT_READY',
    environment: 'sandbox',
    received_at: time,
    delivery_id: 'sha256-of-the-verification-jwt',
  };
  switch (type) {
    case 'RefreshRequested':
      return createEvent(
        type,
        { item_id: itemId, days_requested: 90, requested_by: 'underwriting' },
        meta,
      );
    case 'RefreshAccepted':
      return createEvent(
        type,
        {
          item_id: itemId,
          refresh_request_id: requestId,
          plaid_request_id: 'req-Abc123',
          days_requested: 90,
          attempts: 1,
          accepted_at: time,
        },
        answering,
      );
    case 'RefreshFailed':
      return createEvent(
        type,
        {
          item_id: itemId,
          refresh_request_id: requestId,
          days_requested: 90,
          error: {
            source: 'plaid',
            error_type: 'ITEM_ERROR',
            error_code: 'ITEM_LOGIN_REQUIRED',
            error_message: 'the login details of this item have changed',
            display_message: null,
            plaid_request_id: 'req-Def456',
            http_status: 400,
          },
          retryable: false,
          attempts: 1,
          failed_at: time,
        },
        answering,
      );
    case 'ReportReady':
      return createEvent(type, { ...delivery, webhook }, meta);
    case 'ReportFailed': {
      const error = {
        error_type: 'ITEM_ERROR',
        error_code: 'PRODUCTS_NOT_SUPPORTED',
        error_message: 'the product is not supported for this item',
        display_message: null,
        request_id: 'req-Ghi789',
        status: 400,
      };
      return createEvent(type, { ...delivery, error, webhook: { ...webhook, error } }, meta);
    }
    case 'PlaidWebhookReceived': {
      const other = { ...webhook, webhook_type: 'ITEM', webhook_code: 'PENDING_EXPIRATION' };
      return createEvent(
        type,
        { ...delivery, webhook_type: 'ITEM', webhook_code: 'PENDING_EXPIRATION', webhook: other },
        meta,
      );
    }
  }
}

export function refreshRequested(
  itemId: string,
  data: Partial<RefreshRequested['data']> = {},
): RefreshRequested {
  return createEvent(
    'RefreshRequested',
    { item_id: itemId, days_requested: 365, ...data },
    { id: randomUUID(), source: 'urn:cashflow-refresh:test', time: new Date().toISOString() },
  );
}
