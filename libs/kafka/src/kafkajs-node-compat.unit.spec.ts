import {
  KAFKAJS_SCHEDULE,
  KAFKAJS_SCHEDULE_SOURCE,
  patchKafkajsForNode,
} from './kafkajs-node-compat';

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no types */
const RequestQueue = require('kafkajs/src/network/requestQueue') as new (options: object) => {
  throttledUntil: number;
  pending: unknown[];
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  scheduleCheckPendingRequests: () => void;
  checkPendingRequests: () => void;
};
/* eslint-enable @typescript-eslint/no-require-imports */

function queue() {
  const q = new RequestQueue({
    instrumentationEmitter: null,
    maxInFlightRequests: null,
    requestTimeout: 30_000,
    enforceRequestTimeout: false,
    clientId: 'test',
    broker: 'localhost:1',
    logger: {
      debug: () => undefined,
      error: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      namespace() {
        return this;
      },
    },
  });
  q.checkPendingRequests = () => undefined;
  return q;
}

describe('kafkajs on Node 22+', () => {
  it('is the kafkajs method the patch replaces (look at the patch again if this fails)', () => {
    // kafkajs 2.2.4's method, comments dropped and white space collapsed: any change fails here.
    const code = KAFKAJS_SCHEDULE_SOURCE.replace(/\/\/.*$/gm, '').replace(/\s+/g, ' ');
    expect(code).toBe(
      'scheduleCheckPendingRequests() { let scheduleAt = this.throttledUntil - Date.now() ' +
        'if (!this.throttleCheckTimeoutId) { if (this.pending.length > 0) { ' +
        'scheduleAt = scheduleAt > 0 ? scheduleAt : CHECK_PENDING_REQUESTS_INTERVAL } ' +
        'this.throttleCheckTimeoutId = setTimeout(() => { this.throttleCheckTimeoutId = null ' +
        'this.checkPendingRequests() }, scheduleAt) } }',
    );
  });

  it('arms no timer with a negative delay (Node 23+ warns on stderr for each)', () => {
    const delays = (schedule: (q: ReturnType<typeof queue>) => void) => {
      const armed = jest.spyOn(global, 'setTimeout');
      try {
        const q = queue();
        expect(q.throttledUntil).toBeLessThan(0); // nothing throttled: kafkajs's negative delay
        schedule(q);
        clearTimeout(q.throttleCheckTimeoutId!);
        return armed.mock.calls.map((call) => call[1]);
      } finally {
        armed.mockRestore();
      }
    };
    // kafkajs's own method, as shipped: the delay is about minus the epoch time.
    const original = (q: ReturnType<typeof queue>) => KAFKAJS_SCHEDULE.call(q);
    expect(delays(original)[0]).toBeLessThan(0);

    patchKafkajsForNode();
    expect(delays((q) => q.scheduleCheckPendingRequests())).toEqual([1]);
  });

  it('still waits out a broker throttle and checks pending requests soon', () => {
    patchKafkajsForNode();
    jest.useFakeTimers({ now: 1_000_000 });
    try {
      const q = queue();
      const checked = jest.fn();
      q.checkPendingRequests = checked;
      q.throttledUntil = 1_000_000 + 500;
      q.scheduleCheckPendingRequests();
      jest.advanceTimersByTime(499);
      expect(checked).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1);
      expect(checked).toHaveBeenCalledTimes(1);

      q.throttledUntil = -1;
      q.pending = [{}];
      q.scheduleCheckPendingRequests();
      jest.advanceTimersByTime(10);
      expect(checked).toHaveBeenCalledTimes(2);
    } finally {
      jest.useRealTimers();
    }
  });
});
