import type {
  Kafka,
  Message,
  PartitionerArgs,
  ProducerBatch,
  ProducerConfig,
  RecordMetadata,
} from 'kafkajs';
import { DurableProducer, NotStoredError, type OutgoingRecord } from './durable-producer';

const PARTITIONS = 6;

/**
 * A kafkajs producer whose sends wait until the test answers them. Like kafkajs, it puts each
 * record on a partition with the producer's partitioner (over PARTITIONS partitions) and
 * resolves with an answer per partition.
 */
class FakeProducer {
  readonly batches: ProducerBatch[] = [];
  private answers: {
    resolve: (stored: RecordMetadata[]) => void;
    reject: (e: Error) => void;
    partitions: Set<string>;
  }[] = [];
  private readonly choose: (args: PartitionerArgs) => number;

  constructor(config: ProducerConfig = {}) {
    this.choose = config.createPartitioner!();
  }

  connected = false;
  disconnected = false;
  /** kafkajs's disconnect waits for requests it still counts as pending, which can be forever. */
  disconnectHangs = false;

  connect() {
    this.connected = true;
    return Promise.resolve();
  }
  disconnect() {
    this.disconnected = true;
    return this.disconnectHangs ? new Promise<void>(() => undefined) : Promise.resolve();
  }
  sendBatch(batch: ProducerBatch) {
    this.batches.push(batch);
    const partitions = this.attempt(batch);
    return new Promise<RecordMetadata[]>((resolve, reject) =>
      this.answers.push({ resolve, reject, partitions }),
    );
  }
  /** One of kafkajs's attempts at a send: where each record goes. */
  attempt(batch: ProducerBatch): Set<string> {
    const partitions = new Set<string>();
    const partitionMetadata = Array.from({ length: PARTITIONS }, (_, partitionId) => ({
      partitionId,
      leader: partitionId % 3,
      partitionErrorCode: 0,
      replicas: [],
      isr: [],
    }));
    for (const { topic, messages } of batch.topicMessages ?? []) {
      for (const message of messages) {
        partitions.add(`${topic}/${this.choose({ topic, partitionMetadata, message })}`);
      }
    }
    return partitions;
  }
  /**
   * Answers the oldest unanswered send: with `error`, or done with an answer for every partition
   * it went to but those in `without` (kafkajs 2.2.4 after a leader moved during its retries).
   */
  answer(error?: Error, without: readonly string[] = []) {
    const next = this.answers.shift();
    if (!next) throw new Error('no send waiting for an answer');
    if (error) {
      next.reject(error);
      return;
    }
    const answered = [...next.partitions].filter((p) => !without.includes(p));
    next.resolve(
      answered.map((p) => {
        const [topicName, partition] = p.split('/') as [string, string];
        return { topicName, partition: Number(partition), errorCode: 0 };
      }),
    );
  }
  /** kafkajs trying the oldest unanswered send again after an error of its own. */
  retryWaiting(): void {
    const waiting = this.answers[0]!;
    waiting.partitions = this.attempt(this.batches[this.batches.length - this.answers.length]!);
  }
  /** The partitions the oldest unanswered send went to. */
  get partitionsWaiting(): string[] {
    return [...(this.answers[0]?.partitions ?? [])];
  }
}

function fakeKafka() {
  const producers: FakeProducer[] = [];
  const kafka = {
    producer: (config: ProducerConfig) => {
      const producer = new FakeProducer(config);
      producers.push(producer);
      return producer;
    },
  } as unknown as Kafka;
  return { kafka, producers };
}

const record = (topic: string, value: string): OutgoingRecord => ({
  topic,
  message: { key: 'k', value },
});
const values = (batch: ProducerBatch | undefined) =>
  (batch?.topicMessages ?? []).map((t) => [t.topic, t.messages.map((m: Message) => m.value)]);

/** Lets the producer's pending promise callbacks run. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('DurableProducer', () => {
  it('sends what arrives during a send together in the next request, each send whole and in order', async () => {
    const { kafka, producers } = fakeKafka();
    const producer = new DurableProducer(kafka);
    const first = producer.send([record('a', '1')]);
    await flush();
    const second = producer.send([record('a', '2'), record('b', '3')]);
    const third = producer.send([record('a', '4')]);
    producers[0]!.answer();
    await first;
    await flush();
    expect(producers[0]!.batches).toHaveLength(2);
    expect(values(producers[0]!.batches[1])).toEqual([
      ['a', ['2', '4']],
      ['b', ['3']],
    ]);
    expect(producers[0]!.batches[1]!.acks).toBe(-1);
    producers[0]!.answer();
    await Promise.all([second, third]);
  });

  it('keeps a request within maxBatch records but never splits one send', async () => {
    const { kafka, producers } = fakeKafka();
    const producer = new DurableProducer(kafka, { maxBatch: 2 });
    const sends = [
      producer.send([record('a', '1')]),
      producer.send([record('a', '2'), record('a', '3'), record('a', '4')]),
      producer.send([record('a', '5')]),
    ];
    await flush();
    producers[0]!.answer();
    await flush();
    producers[0]!.answer();
    await flush();
    producers[0]!.answer();
    await Promise.all(sends);
    expect(producers[0]!.batches.map(values)).toEqual([
      [['a', ['1']]],
      [['a', ['2', '3', '4']]],
      [['a', ['5']]],
    ]);
  });

  it('replaces the producer after a failed send, so the next send cannot reuse its sequence', async () => {
    const { kafka, producers } = fakeKafka();
    const producer = new DurableProducer(kafka);
    const lost = producer.send([record('a', 'lost')]);
    await flush();
    producers[0]!.answer(new Error('Request Produce(key: 0, version: 7) timed out'));
    const failure = await lost.catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(NotStoredError);
    expect(failure).toMatchObject({ kind: 'kafka', code: 'NOT_STORED' });
    expect((failure as Error).message).toMatch(/timed out/);
    await flush();
    expect(producers[0]!.disconnected).toBe(true);

    const next = producer.send([record('a', 'next')]);
    await flush();
    expect(producers).toHaveLength(2);
    expect(producers[1]!.connected).toBe(true);
    expect(values(producers[1]!.batches[0])).toEqual([['a', ['next']]]);
    producers[1]!.answer();
    await next;
  });

  it('sends on with the new producer while the replaced one never finishes disconnecting', async () => {
    const { kafka, producers } = fakeKafka();
    const producer = new DurableProducer(kafka);
    producers[0]!.disconnectHangs = true;
    const lost = producer.send([record('a', 'lost')]);
    await flush();
    producers[0]!.answer(new Error('Connection error: connect ECONNREFUSED'));
    await expect(lost).rejects.toBeInstanceOf(NotStoredError);

    const next = producer.send([record('a', 'next')]);
    await flush();
    expect(producers).toHaveLength(2);
    expect(values(producers[1]!.batches[0])).toEqual([['a', ['next']]]);
    producers[1]!.answer();
    await next;
  });

  it('says not stored after the time-out, and never sends a record that timed out waiting', async () => {
    jest.useFakeTimers();
    try {
      const { kafka, producers } = fakeKafka();
      const producer = new DurableProducer(kafka, { timeoutMs: 1000 });
      const slow = producer.send([record('a', 'slow')]);
      await jest.advanceTimersByTimeAsync(0);
      const waiting = producer.send([record('a', 'waiting')]);
      const results = [slow.catch((e: Error) => e), waiting.catch((e: Error) => e)];
      await jest.advanceTimersByTimeAsync(1000);
      for (const result of await Promise.all(results)) {
        expect(result).toMatchObject({ kind: 'timeout' });
      }
      producers[0]!.answer();
      await jest.advanceTimersByTimeAsync(0);
      expect(producers[0]!.batches.map(values)).toEqual([[['a', ['slow']]]]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('stops counting a send that timed out waiting towards maxPending', async () => {
    jest.useFakeTimers();
    try {
      const { kafka, producers } = fakeKafka();
      const producer = new DurableProducer(kafka, { timeoutMs: 1000, maxPending: 2 });
      const inFlight = producer.send([record('a', '1')]).catch((e: Error) => e);
      await jest.advanceTimersByTimeAsync(0);
      const waiting = producer.send([record('a', '2')]).catch((e: Error) => e);
      await expect(producer.send([record('a', '3')])).rejects.toMatchObject({ kind: 'overloaded' });
      await jest.advanceTimersByTimeAsync(1000);
      expect(await waiting).toMatchObject({ kind: 'timeout' });
      // The request in flight still counts; the send that timed out waiting does not.
      const next = producer.send([record('a', '4')]);
      producers[0]!.answer();
      expect(await inFlight).toMatchObject({ kind: 'timeout' });
      await jest.advanceTimersByTimeAsync(0);
      expect(values(producers[0]!.batches[1])).toEqual([['a', ['4']]]);
      producers[0]!.answer();
      await next;
    } finally {
      jest.useRealTimers();
    }
  });

  it('refuses at once beyond maxPending records waiting or in flight', async () => {
    const { kafka, producers } = fakeKafka();
    const producer = new DurableProducer(kafka, { maxPending: 3 });
    const inFlight = producer.send([record('a', '1'), record('a', '2')]);
    await flush();
    const queued = producer.send([record('a', '3')]);
    await expect(producer.send([record('a', '4')])).rejects.toMatchObject({ kind: 'overloaded' });
    producers[0]!.answer();
    await inFlight;
    await flush();
    producers[0]!.answer();
    await queued;
    // Room again once they are stored.
    const later = producer.send([record('a', '5'), record('a', '6'), record('a', '7')]);
    await flush();
    producers[0]!.answer();
    await later;
  });

  it('on disconnect refuses what was not sent, lets the request in flight finish, then closes', async () => {
    const { kafka, producers } = fakeKafka();
    const producer = new DurableProducer(kafka);
    const inFlight = producer.send([record('a', '1')]);
    await flush();
    const queued = producer.send([record('a', '2')]).catch((e: Error) => e);
    const closing = producer.disconnect();
    expect(await queued).toMatchObject({ kind: 'closed' });
    expect(producers[0]!.disconnected).toBe(false);
    producers[0]!.answer();
    await inFlight;
    await closing;
    expect(producers[0]!.disconnected).toBe(true);
    await expect(producer.send([record('a', '3')])).rejects.toMatchObject({ kind: 'closed' });
  });

  it('takes a send kafkajs reports done without answering one of its partitions for not stored, and sends it all again with a new producer', async () => {
    const { kafka, producers } = fakeKafka();
    const producer = new DurableProducer(kafka);
    const records = ['item-1', 'item-2', 'item-3', 'item-4'].map((key) => ({
      topic: 'outcomes',
      message: { key, value: key },
    }));
    const sent = producer.send(records).catch((e: Error) => e);
    await flush();
    const partitions = producers[0]!.partitionsWaiting;
    expect(partitions.length).toBeGreaterThan(1);
    producers[0]!.answer(undefined, [partitions[0]!]);
    const error = await sent;
    expect(error).toBeInstanceOf(NotStoredError);
    expect(error).toMatchObject({ kind: 'kafka' });
    expect((error as Error).message).toContain(
      `without an answer for outcomes[${partitions[0]!.split('/')[1]}]`,
    );
    // Sent again whole, by a new producer (whose sequences start afresh).
    const again = producer.send(records);
    await flush();
    expect(producers).toHaveLength(2);
    expect(producers[1]!.partitionsWaiting).toEqual(partitions);
    producers[1]!.answer();
    await again;
  });

  it("counts the partitions of kafkajs's last attempt only: a keyless record may go elsewhere when it tries again", async () => {
    const { kafka, producers } = fakeKafka();
    const producer = new DurableProducer(kafka);
    const sent = producer.send([
      { topic: 'dead-letters', message: { key: null, value: 'a' } },
      { topic: 'dead-letters', message: { key: null, value: 'b' } },
    ]);
    await flush();
    const first = producers[0]!.partitionsWaiting;
    // The round-robin moves both records on when kafkajs tries again.
    producers[0]!.retryWaiting();
    expect(producers[0]!.partitionsWaiting).not.toEqual(first);
    producers[0]!.answer();
    await sent;
  });

  it('resolves an empty send at once', async () => {
    const { kafka, producers } = fakeKafka();
    await new DurableProducer(kafka).send([]);
    expect(producers[0]!.batches).toEqual([]);
  });
});
