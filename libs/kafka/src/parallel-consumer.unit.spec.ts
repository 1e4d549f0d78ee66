import { EventEmitter } from 'node:events';
import type { EachBatchPayload, Kafka } from 'kafkajs';
import pino from 'pino';
import { ParallelConsumer } from './parallel-consumer';

type Commit = { topic: string; partition: number; offset: string };

/**
 * The part of a kafkajs consumer the ParallelConsumer uses. Like kafkajs, `commitOffsets`
 * resolves without committing anything while the consumer's runner is stopped (kafkajs logs
 * "consumer not running, exiting" at debug level and returns): between a crash and the restart.
 */
class FakeConsumer {
  readonly events = { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' };
  private readonly emitter = new EventEmitter();
  eachBatch: ((payload: EachBatchPayload) => Promise<void>) | undefined;
  running = true;
  /** What reached the group's coordinator. */
  readonly committed: Commit[][] = [];

  on(name: string, listener: (event: unknown) => void) {
    this.emitter.on(name, listener);
  }
  connect = () => Promise.resolve();
  subscribe = () => Promise.resolve();
  disconnect = () => Promise.resolve();
  pause = () => undefined;
  run(options: { eachBatch: (payload: EachBatchPayload) => Promise<void> }) {
    this.eachBatch = options.eachBatch;
    return Promise.resolve();
  }
  /** When set, commits wait for the test to let them end (a commit kafkajs is retrying). */
  held: (() => void)[] | undefined;
  commitOffsets(offsets: Commit[]) {
    if (this.held) return new Promise<void>((resolve) => this.held!.push(resolve));
    if (this.running) this.committed.push(offsets);
    return Promise.resolve();
  }
  join(memberId: string, assignment: Record<string, number[]>) {
    this.emitter.emit('consumer.group_join', {
      payload: { memberId, memberAssignment: assignment },
    });
  }
}

/** A batch of `offsets` of topic `t`, partition 0, handed over as kafkajs does. */
function batch(offsets: number[]): EachBatchPayload {
  return {
    batch: {
      topic: 't',
      partition: 0,
      messages: offsets.map((o) => ({ offset: String(o), key: null, value: null, headers: {} })),
    },
    heartbeat: () => Promise.resolve(),
    isRunning: () => true,
    isStale: () => false,
    resolveOffset: () => undefined,
  } as unknown as EachBatchPayload;
}

describe('ParallelConsumer', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  async function started() {
    const fake = new FakeConsumer();
    const kafka = { consumer: () => fake } as unknown as Kafka;
    const consumer = new ParallelConsumer(
      kafka,
      {
        groupId: 'g',
        topics: ['t'],
        maxInFlight: 4,
        commitIntervalMs: 100,
        logger: pino({ level: 'silent' }),
      },
      () => Promise.resolve(),
    );
    await consumer.start();
    fake.join('member-1', { t: [0] });
    return { fake, consumer };
  }

  it('commits below the lowest unfinished message, once per change', async () => {
    const { fake, consumer } = await started();
    await fake.eachBatch!(batch([0, 1, 2]));
    await jest.advanceTimersByTimeAsync(300);
    expect(fake.committed).toEqual([[{ topic: 't', partition: 0, offset: '3' }]]);
    await consumer.stop(0);
  });

  it('commits again after it rejoins its group: a commit made while kafkajs was restarting the consumer went nowhere', async () => {
    const { fake, consumer } = await started();
    // The consumer crashed: kafkajs's runner is stopped, and the commit of 0-2 is dropped.
    fake.running = false;
    await fake.eachBatch!(batch([0, 1, 2]));
    await jest.advanceTimersByTimeAsync(300);
    expect(fake.committed).toEqual([]);
    // Started again, as a new member: kafkajs delivers 0-2 again from the group's offset, and
    // they are handled and committed as new.
    fake.running = true;
    fake.join('member-2', { t: [0] });
    await fake.eachBatch!(batch([0, 1, 2]));
    await jest.advanceTimersByTimeAsync(300);
    expect(fake.committed).toEqual([[{ topic: 't', partition: 0, offset: '3' }]]);
    await consumer.stop(0);
  });

  it('commits nothing it knew before it left the group: another member may have committed further since', async () => {
    const { fake, consumer } = await started();
    fake.running = false;
    await fake.eachBatch!(batch([0, 1, 2]));
    await jest.advanceTimersByTimeAsync(300);
    fake.running = true;
    fake.join('member-2', { t: [0] });
    // Nothing delivered since the rejoin: offset 3, what this consumer knew, is not sent.
    await jest.advanceTimersByTimeAsync(300);
    expect(fake.committed).toEqual([]);
    await consumer.stop(0);
  });

  it('does not take a commit that ends after a rejoin for committed', async () => {
    const { fake, consumer } = await started();
    // A commit kafkajs is still retrying when the consumer crashes and rejoins; it then ends
    // without having committed anything.
    fake.held = [];
    await fake.eachBatch!(batch([0, 1, 2]));
    await jest.advanceTimersByTimeAsync(150);
    expect(fake.held).toHaveLength(1);
    fake.join('member-2', { t: [0] });
    fake.held.shift()!();
    fake.held = undefined;
    await fake.eachBatch!(batch([0, 1, 2]));
    await jest.advanceTimersByTimeAsync(300);
    expect(fake.committed).toEqual([[{ topic: 't', partition: 0, offset: '3' }]]);
    await consumer.stop(0);
  });
});
