/**
 * The events of cashflow-refresh (v1). Each event's data schema is a zod schema: the TypeScript
 * type is inferred from it and its JSON Schema is emitted from it, so the three cannot disagree.
 */
import type { z } from 'zod';
import { ItemHealthRestoredData, ItemNeedsAttentionData } from './item-health';
import { PlaidWebhookReceivedData } from './plaid-webhook-received';
import { RefreshAcceptedData } from './refresh-accepted';
import { RefreshFailedData } from './refresh-failed';
import { RefreshRequestedData } from './refresh-requested';
import { ReportFailedData } from './report-failed';
import { ReportFetchFailedData, ReportFetchedData } from './report-fetched';
import { ReportOverdueData } from './report-overdue';
import { ReportReadyData } from './report-ready';

export * from './common';
export * from './item-health';
export * from './plaid-webhook-received';
export * from './refresh-accepted';
export * from './refresh-failed';
export * from './refresh-requested';
export * from './report-failed';
export * from './report-fetched';
export * from './report-overdue';
export * from './report-ready';

/** CloudEvents context attributes other than those derived from the data (subject = item_id). */
export interface EventMetadata {
  /** ce_id: unique per event; an event published again keeps its id. */
  readonly id: string;
  /** ce_source: the producer, e.g. `urn:cashflow-refresh:refresh-worker`. */
  readonly source: string;
  /** ce_time: RFC 3339. */
  readonly time: string;
  /** ce_correlationid: id of the RefreshRequested this event answers or follows from. */
  readonly correlationId?: string;
  /** ce_causationid: id of the event that directly caused this one. */
  readonly causationId?: string;
  /**
   * ce_traceparent / ce_tracestate: the CloudEvents distributed-tracing extension, W3C trace
   * context of the span that produced the event. Optional; an invalid value is ignored (as W3C
   * trace context asks), never a reason to refuse the event.
   */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

interface Event<Type extends string, Data> {
  readonly type: Type;
  readonly data: Readonly<Data>;
  readonly metadata: EventMetadata;
}

export type RefreshRequested = Event<'RefreshRequested', RefreshRequestedData>;
export type RefreshAccepted = Event<'RefreshAccepted', RefreshAcceptedData>;
export type RefreshFailed = Event<'RefreshFailed', RefreshFailedData>;
export type ReportReady = Event<'ReportReady', ReportReadyData>;
export type ReportFailed = Event<'ReportFailed', ReportFailedData>;
export type ReportOverdue = Event<'ReportOverdue', ReportOverdueData>;
export type PlaidWebhookReceived = Event<'PlaidWebhookReceived', PlaidWebhookReceivedData>;
export type ReportFetched = Event<'ReportFetched', ReportFetchedData>;
export type ReportFetchFailed = Event<'ReportFetchFailed', ReportFetchFailedData>;
export type ItemNeedsAttention = Event<'ItemNeedsAttention', ItemNeedsAttentionData>;
export type ItemHealthRestored = Event<'ItemHealthRestored', ItemHealthRestoredData>;

export type CashflowEvent =
  | RefreshRequested
  | RefreshAccepted
  | RefreshFailed
  | ReportReady
  | ReportFailed
  | ReportOverdue
  | PlaidWebhookReceived
  | ReportFetched
  | ReportFetchFailed
  | ItemNeedsAttention
  | ItemHealthRestored;
export type EventType = CashflowEvent['type'];
export type EventOfType<T extends EventType> = Extract<CashflowEvent, { type: T }>;
export type EventData<T extends EventType> = EventOfType<T>['data'];

export interface EventDefinition<T extends EventType> {
  readonly type: T;
  readonly version: 1;
  /** The CloudEvents `type` attribute (`ce_type` header). */
  readonly cloudEventType: string;
  readonly data: z.ZodType<EventData<T>>;
}

function define<T extends EventType>(type: T, data: z.ZodType<EventData<T>>): EventDefinition<T> {
  return { type, version: 1, cloudEventType: `cashflow-refresh.${type}.v1`, data };
}

export const EVENTS: { readonly [T in EventType]: EventDefinition<T> } = {
  RefreshRequested: define('RefreshRequested', RefreshRequestedData),
  RefreshAccepted: define('RefreshAccepted', RefreshAcceptedData),
  RefreshFailed: define('RefreshFailed', RefreshFailedData),
  ReportReady: define('ReportReady', ReportReadyData),
  ReportFailed: define('ReportFailed', ReportFailedData),
  ReportOverdue: define('ReportOverdue', ReportOverdueData),
  PlaidWebhookReceived: define('PlaidWebhookReceived', PlaidWebhookReceivedData),
  ReportFetched: define('ReportFetched', ReportFetchedData),
  ReportFetchFailed: define('ReportFetchFailed', ReportFetchFailedData),
  ItemNeedsAttention: define('ItemNeedsAttention', ItemNeedsAttentionData),
  ItemHealthRestored: define('ItemHealthRestored', ItemHealthRestoredData),
};

export const EVENT_TYPES = Object.keys(EVENTS) as EventType[];

export function eventTypeOfCloudEventType(cloudEventType: string): EventType | undefined {
  return EVENT_TYPES.find((type) => EVENTS[type].cloudEventType === cloudEventType);
}
