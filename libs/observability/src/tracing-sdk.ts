/**
 * The OpenTelemetry SDK side of tracing.ts, in a module of its own so that it is loaded only when
 * tracing is turned on (tracing.ts requires it then). Nothing else imports it.
 */
import { context, diag, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Tracing, TracingConfig } from './tracing';

/** How long a stopping app waits for its last spans to be exported. */
const SHUTDOWN_EXPORT_MS = 3000;

/** Spans batched to the OTLP/HTTP exporter, which reads the `OTEL_EXPORTER_OTLP_*` variables. */
export function otlpProcessor(): SpanProcessor {
  return new BatchSpanProcessor({ exporter: new OTLPTraceExporter() });
}

/**
 * Registers a tracer provider, an async-local context manager and the W3C trace-context
 * propagator globally. Tests pass an in-memory exporter's processor here.
 */
export function registerTracing(options: {
  service: string;
  processors: SpanProcessor[];
  sampler?: Sampler;
}): Tracing {
  const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.service }).merge(
    detectResources({ detectors: [envDetector] }),
  );
  const provider = new TracerProvider({
    resource,
    spanProcessors: options.processors,
    sampler: options.sampler ?? new ParentBasedSampler({ root: new AlwaysOnSampler() }),
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  let stopped: Promise<void> | undefined;
  const flushed = () =>
    new Promise<void>((resolve) => {
      // An unreachable collector must not hold a stopping app for the exporter's whole time-out.
      const timer = setTimeout(resolve, SHUTDOWN_EXPORT_MS);
      void provider.shutdown().finally(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  return {
    enabled: true,
    shutdown: () =>
      (stopped ??= flushed().finally(() => {
        trace.disable();
        propagation.disable();
        context.disable();
        diag.disable();
      })),
  };
}

export function samplerFrom(config: TracingConfig): Sampler {
  const ratio = new TraceIdRatioBasedSampler(config.OTEL_TRACES_SAMPLER_ARG);
  switch (config.OTEL_TRACES_SAMPLER) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
    default: {
      const unknown: never = config.OTEL_TRACES_SAMPLER;
      throw new Error(`unknown sampler ${String(unknown)}`);
    }
  }
}
