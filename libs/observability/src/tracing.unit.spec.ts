import { ConfigError } from '@cashflow/config';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { inSpan, registerTracing, startTracing, tracer } from './tracing';

/** What an app would load for tracing it does not do (about 15 MB of a process's memory). */
const SDK_MODULES = [
  '@opentelemetry/sdk-trace',
  '@opentelemetry/exporter-trace-otlp-http',
  '@opentelemetry/resources',
  '@opentelemetry/context-async-hooks',
];

describe('tracing', () => {
  it('is off without an OTLP endpoint, and with OTEL_SDK_DISABLED=true', async () => {
    expect(startTracing('refresh-worker', {}).enabled).toBe(false);
    const disabled = startTracing('refresh-worker', {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
      OTEL_SDK_DISABLED: 'true',
    });
    expect(disabled.enabled).toBe(false);
    // Off, spans record nothing.
    expect(tracer().startSpan('x').isRecording()).toBe(false);
    await disabled.shutdown();
  });

  it('stops start-up naming the variable when an OTEL_* value is invalid', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
    const start = (env: Record<string, string>) => () => startTracing('projector', env);
    expect(start({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow(ConfigError);
    expect(start({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT: must be an http/,
    );
    expect(start({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://collector:4317' })).toThrow(
      /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:/,
    );
    expect(start({ ...endpoint, OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(
      /OTEL_TRACES_SAMPLER:/,
    );
    expect(start({ ...endpoint, OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(
      /OTEL_TRACES_SAMPLER_ARG:/,
    );
  });

  it('reads no other OTEL_* variable without an endpoint, and takes OTEL_SDK_DISABLED in any case', () => {
    expect(startTracing('projector', { OTEL_TRACES_SAMPLER: 'jaeger_remote' }).enabled).toBe(false);
    const disabled = startTracing('projector', {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
      OTEL_SDK_DISABLED: 'TRUE',
    });
    expect(disabled.enabled).toBe(false);
  });

  it('loads no OpenTelemetry SDK module while tracing is off', () => {
    const loaded: string[] = [];
    jest.isolateModules(() => {
      for (const name of SDK_MODULES) {
        jest.doMock(name, () => {
          loaded.push(name);
          return jest.requireActual(name);
        });
      }
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh copy, mocks in place
      const fresh = require('./tracing') as typeof import('./tracing');
      expect(fresh.startTracing('refresh-worker', {}).enabled).toBe(false);
      expect(loaded).toEqual([]);
      fresh.registerTracing({ service: 'test', processors: [] });
    });
    // Turned on, it is loaded.
    expect(loaded).toEqual(expect.arrayContaining(['@opentelemetry/sdk-trace']));
    trace.disable();
    context.disable();
  });

  describe('registered', () => {
    const exporter = new InMemorySpanExporter();
    let shutdown: () => Promise<void>;
    beforeAll(() => {
      shutdown = registerTracing({
        service: 'test',
        processors: [new SimpleSpanProcessor({ exporter })],
      }).shutdown;
    });
    afterAll(() => shutdown());
    beforeEach(() => exporter.reset());

    it('runs work in a span made current, nested spans as its children', async () => {
      await inSpan('outer', { kind: SpanKind.CONSUMER }, async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        await inSpan('inner', {}, () => {
          expect(trace.getActiveSpan()).toBeDefined();
        });
      });
      const [inner, outer] = exporter.getFinishedSpans();
      expect(outer?.name).toBe('outer');
      expect(inner?.parentSpanContext?.spanId).toBe(outer?.spanContext().spanId);
      expect(inner?.spanContext().traceId).toBe(outer?.spanContext().traceId);
      expect(trace.getSpan(context.active())).toBeUndefined();
    });

    it('records a failure by its type and message, and rethrows it', async () => {
      await expect(
        inSpan('failing', {}, () => {
          throw new TypeError('no such Item');
        }),
      ).rejects.toThrow('no such Item');
      const [span] = exporter.getFinishedSpans();
      expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'no such Item' });
      expect(span?.events[0]?.attributes).toMatchObject({
        'exception.type': 'TypeError',
        'exception.message': 'no such Item',
      });
      // The stack is left out: it names files, and nothing more is needed to find the failure.
      expect(span?.events[0]?.attributes?.['exception.stacktrace']).toBeUndefined();
    });

    it('scrubs secrets from a failure message, as the logs do', async () => {
      const token = 'access-sandbox-00000000-fake-token-for-tests';
      await expect(
        inSpan('leaky', {}, () => {
          throw new Error(`duplicate key (token)=(${token}) via postgres://app:hunter2@db/x`);
        }),
      ).rejects.toThrow();
      const [span] = exporter.getFinishedSpans();
      const text = JSON.stringify([span?.status, span?.events]);
      expect(text).not.toContain(token);
      expect(text).not.toContain('hunter2');
      expect(text).toContain('duplicate key');
    });
  });
});
