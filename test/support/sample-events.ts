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
  const reportId = randomUUID();
  const follows = {
    item_id: itemId,
    fetch_id: randomUUID(),
    report_event_id: reportId,
    report_received_at: time,
    days_requested: 365,
    refresh_request_ids: [requestId],
  };
  const fetchMeta = { ...meta, correlationId: requestId, causationId: reportId };
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
      return createEvent(type, { ...delivery, webhook, found_by: 'webhook' }, meta);
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
    case 'ReportOverdue':
      return createEvent(
        type,
        {
          item_id: itemId,
          refresh_request_ids: [requestId],
          accepted_at: time,
          polls: 3,
          last_successful_update_time: '2026-11-24T09:00:00.000Z',
          last_error: null,
          overdue_at: time,
        },
        answering,
      );
    case 'PlaidWebhookReceived': {
      const other = { ...webhook, webhook_type: 'ITEM', webhook_code: 'PENDING_EXPIRATION' };
      return createEvent(
        type,
        { ...delivery, webhook_type: 'ITEM', webhook_code: 'PENDING_EXPIRATION', webhook: other },
        meta,
      );
    }
    case 'ReportFetched':
      return createEvent(
        type,
        {
          ...follows,
          window_start: '2025-11-25',
          last_successful_update_time: time,
          pages: 2,
          restarts: 0,
          accounts: 2,
          transactions: 612,
          added: 600,
          modified: 10,
          removed: 2,
          oldest_transaction_date: '2025-11-25',
          newest_transaction_date: '2026-11-24',
          insights: {
            months: 12,
            historical_balance_days: 90,
            latest_month: {
              start_date: '2026-11-01',
              end_date: '2026-11-24',
              total_revenue: 5600,
              ending_balance: 3790.5,
              average_daily_net_cashflow: 12.25,
            },
            last_generated_time: time,
          },
          changelog: true,
          fetched_at: time,
          duration_ms: 840,
        },
        fetchMeta,
      );
    case 'ReportFetchFailed':
      return createEvent(
        type,
        {
          ...follows,
          error: {
            source: 'plaid',
            error_type: 'ITEM_ERROR',
            error_code: 'ITEM_LOGIN_REQUIRED',
            error_message: 'the login details of this item have changed',
            display_message: null,
            plaid_request_id: 'req-Jkl012',
            http_status: 400,
          },
          retryable: false,
          attempts: 1,
          failed_at: time,
        },
        fetchMeta,
      );
    case 'ItemNeedsAttention':
      return createEvent(
        type,
        {
          item_id: itemId,
          health: {
            status: 'needs_user_action',
            reason: 'ITEM_LOGIN_REQUIRED',
            consent_expires_at: null,
          },
          previous: { status: 'healthy', reason: null, consent_expires_at: null },
          cause: { kind: 'item_webhook', code: 'ITEM_LOGIN_REQUIRED', event_id: randomUUID() },
          changed_at: time,
          sequence: 1,
          decided_at: time,
        },
        meta,
      );
    case 'ItemHealthRestored':
      return createEvent(
        type,
        {
          item_id: itemId,
          previous: {
            status: 'needs_user_action',
            reason: 'ITEM_LOGIN_REQUIRED',
            consent_expires_at: null,
          },
          cause: { kind: 'item_webhook', code: 'LOGIN_REPAIRED', event_id: randomUUID() },
          changed_at: time,
          sequence: 2,
          decided_at: time,
        },
        meta,
      );
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
