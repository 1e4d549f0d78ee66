import { ROOT_CONTEXT, trace } from '@opentelemetry/api';

describe('trace context on events', () => {
  it('loads no OpenTelemetry core while nothing is traced and events carry no trace fields', () => {
    const loaded: string[] = [];
    jest.isolateModules(() => {
      jest.doMock('@opentelemetry/core', () => {
        loaded.push('@opentelemetry/core');
        return jest.requireActual('@opentelemetry/core');
      });
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh copy, mock in place
      const fresh = require('./trace-context') as typeof import('./trace-context');
      expect(fresh.traceFields()).toEqual({});
      expect(trace.getSpanContext(fresh.contextOf({}))).toBeUndefined();
      expect(loaded).toEqual([]);
      // A traced context is written, and the propagator is loaded for it.
      const traced = trace.setSpanContext(ROOT_CONTEXT, {
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        traceFlags: 1,
      });
      expect(fresh.traceFields(traced)).toEqual({
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      });
      expect(loaded).toEqual(['@opentelemetry/core']);
    });
  });

  it('reads the trace fields an event carries back into the context they name', () => {
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh copy
      const fresh = require('./trace-context') as typeof import('./trace-context');
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const read = trace.getSpanContext(fresh.contextOf({ traceparent, tracestate: 'a=1' }));
      expect(read).toMatchObject({
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        isRemote: true,
      });
      expect(read?.traceState?.get('a')).toBe('1');
      expect(fresh.traceFields(fresh.contextOf({ traceparent }))).toEqual({ traceparent });
    });
  });
});
