import { EventEmitter } from 'node:events';
import type { Consumer } from 'kafkajs';
import pino from 'pino';
import { restartWhenGivenUp } from './consumer-restarts';

/** The part of a kafkajs consumer the restarts use: its CRASH event and connect. */
class FakeConsumer {
  readonly events = { CRASH: 'consumer.crash' };
  private readonly emitter = new EventEmitter();
  connects = 0;
  failConnects = 0;

  on(name: string, listener: (event: unknown) => void) {
    this.emitter.on(name, listener);
  }
  connect() {
    this.connects += 1;
    if (this.failConnects > 0) {
      this.failConnects -= 1;
      return Promise.reject(new Error('connect ECONNREFUSED'));
    }
    return Promise.resolve();
  }
  crash(restart: boolean) {
    this.emitter.emit('consumer.crash', {
      payload: { error: new Error('Failed to find group coordinator'), restart },
    });
  }
}

const silent = pino({ level: 'silent' });
/** Lets the restart's promises run (fake timers fake setImmediate too). */
const settle = () => jest.advanceTimersByTimeAsync(0);

describe('restartWhenGivenUp', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function setUp(stopping = () => false) {
    const consumer = new FakeConsumer();
    const run = jest.fn(() => Promise.resolve());
    const restarts = restartWhenGivenUp(consumer as unknown as Consumer, {
      run,
      stopping,
      logger: silent,
      delayMs: 1000,
      maxDelayMs: 4000,
    });
    return { consumer, run, restarts };
  }

  it('connects and runs the consumer again after a crash kafkajs does not restart', async () => {
    const { consumer, run, restarts } = setUp();
    consumer.crash(false);
    await jest.advanceTimersByTimeAsync(999);
    expect(run).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(1);
    await settle();
    expect(consumer.connects).toBe(1);
    expect(run).toHaveBeenCalledTimes(1);
    expect(restarts()).toBe(1);
  });

  it('leaves a crash kafkajs restarts itself alone', async () => {
    const { consumer, run } = setUp();
    consumer.crash(true);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(consumer.connects).toBe(0);
    expect(run).not.toHaveBeenCalled();
  });

  it('keeps trying, with doubling waits up to the maximum, while the broker is away', async () => {
    const { consumer, run, restarts } = setUp();
    consumer.failConnects = 3;
    consumer.crash(false);
    // Tries at 1 s, then 2 s, 4 s and 4 s later: the fourth succeeds.
    await jest.advanceTimersByTimeAsync(1000);
    expect(consumer.connects).toBe(1);
    await jest.advanceTimersByTimeAsync(2000);
    expect(consumer.connects).toBe(2);
    await jest.advanceTimersByTimeAsync(4000);
    expect(consumer.connects).toBe(3);
    await jest.advanceTimersByTimeAsync(3999);
    expect(consumer.connects).toBe(3);
    await jest.advanceTimersByTimeAsync(1);
    await settle();
    expect(consumer.connects).toBe(4);
    expect(run).toHaveBeenCalledTimes(1);
    expect(restarts()).toBe(1);
  });

  it('starts one restart for crashes that come while one is waiting', async () => {
    const { consumer, run } = setUp();
    consumer.crash(false);
    consumer.crash(false);
    await jest.advanceTimersByTimeAsync(1000);
    await settle();
    expect(run).toHaveBeenCalledTimes(1);
    // A later crash, once running again, restarts again.
    consumer.crash(false);
    await jest.advanceTimersByTimeAsync(1000);
    await settle();
    expect(run).toHaveBeenCalledTimes(2);
  });

  it('does not restart a consumer its owner is stopping', async () => {
    let stopping = false;
    const { consumer, run } = setUp(() => stopping);
    consumer.crash(false);
    stopping = true;
    await jest.advanceTimersByTimeAsync(60_000);
    expect(consumer.connects).toBe(0);
    expect(run).not.toHaveBeenCalled();
  });
  it('tries again when the consumer crashes while it is being started (kafkajs resolves run() all the same)', async () => {
    const { consumer, run, restarts } = setUp();
    // kafkajs's runner catches a failed join itself and crashes the consumer from inside run().
    run.mockImplementationOnce(() => {
      consumer.crash(false);
      return Promise.resolve();
    });
    consumer.crash(false);
    await jest.advanceTimersByTimeAsync(1000);
    await settle();
    expect(run).toHaveBeenCalledTimes(1);
    expect(restarts()).toBe(0);
    // The crash during that start is not lost: another start follows, with backoff.
    await jest.advanceTimersByTimeAsync(2000);
    await settle();
    expect(run).toHaveBeenCalledTimes(2);
    expect(restarts()).toBe(1);
  });
});
