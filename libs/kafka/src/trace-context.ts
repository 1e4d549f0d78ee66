/**
 * Trace context carried by the events themselves (CloudEvents distributed-tracing extension:
 * `ce_traceparent` / `ce_tracestate`, encoded by the contracts' Kafka binding). Here it is turned
 * into OpenTelemetry contexts and back, with the W3C propagator used directly rather than the
 * global one, so a context always travels the same way whichever Kafka client carries it.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  isSpanContextValid,
  trace,
  type Context,
  type Link,
  type Span,
} from '@opentelemetry/api';
import type { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { CashflowEvent, EventMetadata } from '@cashflow/contracts';
import { inSpan } from '@cashflow/observability';

let propagator: W3CTraceContextPropagator | undefined;

/**
 * The W3C propagator, loaded when a context is first written or read: with tracing off (the
 * default) and events carrying no trace fields, `@opentelemetry/core` is never loaded (about
 * 7 MB of a process's memory).
 */
function w3c(): W3CTraceContextPropagator {
  if (propagator === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when used (above)
    const core = require('@opentelemetry/core') as typeof import('@opentelemetry/core');
    propagator = new core.W3CTraceContextPropagator();
  }
  return propagator;
}

export type TraceFields = Pick<EventMetadata, 'traceparent' | 'tracestate'>;

/**
 * The trace fields for an event made in `ctx` (the active context by default): empty when
 * nothing there is traced, so events stay as they were with tracing off.
 */
export function traceFields(ctx: Context = context.active()): TraceFields {
  const spanContext = trace.getSpanContext(ctx);
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return {};
  const carrier: Record<string, string> = {};
  w3c().inject(ctx, carrier, defaultTextMapSetter);
  const { traceparent, tracestate } = carrier;
  return {
    ...(traceparent ? { traceparent } : {}),
    ...(traceparent && tracestate ? { tracestate } : {}),
  };
}

/** The context an event's trace fields name, as a remote parent; the root when it has none. */
export function contextOf(fields: TraceFields): Context {
  if (!fields.traceparent) return ROOT_CONTEXT;
  return w3c().extract(
    ROOT_CONTEXT,
    {
      traceparent: fields.traceparent,
      ...(fields.tracestate ? { tracestate: fields.tracestate } : {}),
    },
    defaultTextMapGetter,
  );
}

/** A span link to what the trace fields name; undefined when they name nothing. */
export function linkTo(fields: TraceFields): Link | undefined {
  const spanContext = trace.getSpanContext(contextOf(fields));
  return spanContext ? { context: spanContext } : undefined;
}

/** Links to each of `fields` that names a span, duplicates dropped. */
export function linksTo(fields: Iterable<TraceFields>): Link[] {
  const seen = new Set<string>();
  const links: Link[] = [];
  for (const f of fields) {
    const link = linkTo(f);
    if (!link || seen.has(link.context.spanId)) continue;
    seen.add(link.context.spanId);
    links.push(link);
  }
  return links;
}

/** Attributes naming an event on a span (ids and type only; never data). */
export function eventAttributes(event: CashflowEvent, topic: string) {
  return {
    'messaging.system': 'kafka',
    'messaging.destination.name': topic,
    'messaging.message.id': event.metadata.id,
    'cloudevents.event_id': event.metadata.id,
    'cloudevents.event_type': event.type,
    'cloudevents.event_source': event.metadata.source,
    'cashflow.item_id': event.data.item_id,
  };
}

/**
 * Handles a consumed event in a `process <topic>` span whose parent is the event's own trace
 * context: a RefreshRequested published with a traceparent continues its publisher's trace.
 */
export function inConsumeSpan<T>(
  event: CashflowEvent,
  topic: string,
  work: (span: Span) => Promise<T> | T,
): Promise<T> {
  return inSpan(
    `process ${topic}`,
    {
      kind: SpanKind.CONSUMER,
      parent: contextOf(event.metadata),
      attributes: { ...eventAttributes(event, topic), 'messaging.operation.type': 'process' },
    },
    work,
  );
}
