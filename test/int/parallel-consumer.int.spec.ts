import { ParallelConsumer, type ConsumedMessage } from '@cashflow/kafka';
import type { Kafka } from 'kafkajs';
import { uniqueSuffix } from '../support/infra';
import { quietLogger, testKafka, topicOfNumbers } from '../support/kafka';
import { waitFor } from '../support/wait-for';

describe('ParallelConsumer against the real broker', () => {
  let kafka: Kafka;
  const topic = `test-parallel-${uniqueSuffix()}`;

  beforeAll(async () => {
    kafka = testKafka('');
    await topicOfNumbers(kafka, topic, 40);
  });

  async function committedOffset(groupId: string): Promise<string> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return entry?.partitions[0]?.offset ?? '-1';
    } finally {
      await admin.disconnect();
    }
  }

  it('handles many messages of one partition at once, and commits only below the lowest unfinished', async () => {
    const groupId = `g-${uniqueSuffix()}`;
    let running = 0;
    let peak = 0;
    const done = new Set<string>();
    let releaseFirst!: () => void;
    const firstBlocked = new Promise<void>((r) => (releaseFirst = r));
    const consumer = new ParallelConsumer(
      kafka,
      { groupId, topics: [topic], maxInFlight: 100, commitIntervalMs: 100, logger: quietLogger },
      async (message: ConsumedMessage) => {
        running += 1;
        peak = Math.max(peak, running);
        if (message.offset === '0') await firstBlocked;
        else await new Promise((r) => setTimeout(r, 300));
        running -= 1;
        done.add(message.offset);
      },
    );
    await consumer.start();
    try {
      await waitFor('39 messages handled', () => (done.size >= 39 ? true : undefined));
      expect(peak).toBeGreaterThanOrEqual(30);
      // Offset 0 is unfinished: nothing may be committed past it.
      await new Promise((r) => setTimeout(r, 300));
      expect(['-1', '0']).toContain(await committedOffset(groupId));

      releaseFirst();
      await waitFor('offset 40 committed', async () =>
        (await committedOffset(groupId)) === '40' ? true : undefined,
      );
    } finally {
      releaseFirst();
      await consumer.stop(5000);
    }
  });

  it('redelivers to the next consumer what was unfinished when it stopped', async () => {
    const groupId = `g-${uniqueSuffix()}`;
    const first = new ParallelConsumer(
      kafka,
      { groupId, topics: [topic], maxInFlight: 100, commitIntervalMs: 100, logger: quietLogger },
      (message) =>
        message.offset === '25' ? new Promise<void>(() => undefined) : Promise.resolve(),
    );
    await first.start();
    await waitFor('offset 25 committed', async () =>
      (await committedOffset(groupId)) === '25' ? true : undefined,
    );
    expect(await first.stop(200)).toEqual({ drained: false });
    expect(await committedOffset(groupId)).toBe('25');

    const seen: string[] = [];
    const second = new ParallelConsumer(
      kafka,
      { groupId, topics: [topic], maxInFlight: 100, commitIntervalMs: 100, logger: quietLogger },
      (message) => {
        seen.push(message.offset);
        return Promise.resolve();
      },
    );
    await second.start();
    try {
      await waitFor('the rest redelivered', () => (seen.length >= 15 ? true : undefined));
      expect(seen[0]).toBe('25');
      expect(seen).not.toContain('24');
    } finally {
      await second.stop(1000);
    }
  });

  it('retries a handler that fails, keeping the message unfinished meanwhile', async () => {
    const groupId = `g-${uniqueSuffix()}`;
    let failures = 0;
    const consumer = new ParallelConsumer(
      kafka,
      { groupId, topics: [topic], maxInFlight: 10, commitIntervalMs: 100, logger: quietLogger },
      (message) => {
        if (message.offset === '3' && failures < 2) {
          failures += 1;
          return Promise.reject(new Error('database unavailable'));
        }
        return Promise.resolve();
      },
    );
    await consumer.start();
    try {
      await waitFor('offset 40 committed', async () =>
        (await committedOffset(groupId)) === '40' ? true : undefined,
      );
      expect(failures).toBe(2);
    } finally {
      await consumer.stop(1000);
    }
  });

  it('gives a message up after its handler has failed for the configured time, passing it on with the last error', async () => {
    const groupId = `g-${uniqueSuffix()}`;
    const givenUp: { offset: string; error: string }[] = [];
    let attempts = 0;
    const consumer = new ParallelConsumer(
      kafka,
      {
        groupId,
        topics: [topic],
        maxInFlight: 10,
        commitIntervalMs: 100,
        logger: quietLogger,
        giveUpAfterMs: 300,
        onGiveUp: (message, error) => {
          givenUp.push({ offset: message.offset, error: (error as Error).message });
          return Promise.resolve();
        },
      },
      (message) => {
        if (message.offset !== '5') return Promise.resolve();
        attempts += 1;
        return Promise.reject(new Error('cannot be handled'));
      },
    );
    await consumer.start();
    try {
      await waitFor('offset 40 committed', async () =>
        (await committedOffset(groupId)) === '40' ? true : undefined,
      );
      expect(givenUp).toEqual([{ offset: '5', error: 'cannot be handled' }]);
      expect(attempts).toBeGreaterThan(1);
    } finally {
      await consumer.stop(1000);
    }
  });

  it('counts the time to give up from the first failure: a slow handler that fails once is retried', async () => {
    const groupId = `g-${uniqueSuffix()}`;
    const givenUp: string[] = [];
    let attempts = 0;
    const consumer = new ParallelConsumer(
      kafka,
      {
        groupId,
        topics: [topic],
        maxInFlight: 10,
        commitIntervalMs: 100,
        logger: quietLogger,
        giveUpAfterMs: 300,
        onGiveUp: (message) => {
          givenUp.push(message.offset);
          return Promise.resolve();
        },
      },
      async (message) => {
        if (message.offset !== '7') return;
        attempts += 1;
        // Busy for longer than the give-up time (a request waiting its turn), then one failure.
        if (attempts === 1) {
          await new Promise((r) => setTimeout(r, 600));
          throw new Error('the database blinked');
        }
      },
    );
    await consumer.start();
    try {
      await waitFor('offset 40 committed', async () =>
        (await committedOffset(groupId)) === '40' ? true : undefined,
      );
      expect(givenUp).toEqual([]);
      expect(attempts).toBe(2);
    } finally {
      await consumer.stop(1000);
    }
  });
});
