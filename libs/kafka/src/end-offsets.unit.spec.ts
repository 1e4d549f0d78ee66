import { KafkaJSProtocolError, KafkaJSRequestTimeoutError, type Kafka } from 'kafkajs';
import { fetchEndOffsets, partitionKey, readEndOffsets } from './end-offsets';

describe('fetchEndOffsets', () => {
  it('files every partition of every topic by topic:partition, offsets as bigints', async () => {
    const asked: string[] = [];
    const admin = {
      fetchTopicOffsets: (topic: string) => {
        asked.push(topic);
        return Promise.resolve(
          topic === 'a'
            ? [
                { partition: 0, offset: '7', high: '7', low: '0' },
                { partition: 1, offset: '0', high: '0', low: '0' },
              ]
            : [{ partition: 0, offset: '12', high: '12', low: '10' }],
        );
      },
    };
    const ends = await fetchEndOffsets(admin, ['a', 'b']);
    expect(asked).toEqual(['a', 'b']);
    expect([...ends.keys()]).toEqual(['a:0', 'a:1', 'b:0']);
    expect(ends.get(partitionKey('a', 0))).toEqual({ topic: 'a', partition: 0, low: 0n, high: 7n });
    expect(ends.get(partitionKey('b', 0))).toEqual({
      topic: 'b',
      partition: 0,
      low: 10n,
      high: 12n,
    });
  });

  it('returns nothing for no topics', async () => {
    const admin = { fetchTopicOffsets: () => Promise.reject(new Error('not asked')) };
    expect((await fetchEndOffsets(admin, [])).size).toBe(0);
  });
});

describe('readEndOffsets', () => {
  /** An error as kafkajs raises it from a broker's answer. */
  const protocolError = (type: string, code: number, retriable: boolean, message: string) =>
    new KafkaJSProtocolError(Object.assign(new Error(message), { type, code, retriable }));

  /** A Kafka whose admins answer from `answers` in turn: an error is thrown, offsets returned. */
  function kafkaAnswering(answers: (Error | { partition: number; high: string; low: string })[]) {
    const admins = { created: 0, disconnected: 0 };
    const kafka = {
      admin: () => {
        admins.created += 1;
        return {
          connect: () => Promise.resolve(),
          disconnect: () => {
            admins.disconnected += 1;
            return Promise.resolve();
          },
          fetchTopicOffsets: () => {
            const answer = answers.shift()!;
            if (answer instanceof Error) return Promise.reject(answer);
            return Promise.resolve([{ ...answer, offset: answer.high }]);
          },
        };
      },
    };
    return { kafka: kafka as unknown as Kafka, admins };
  }

  it('asks again with a new admin, and so fresh metadata, when a leader moved', async () => {
    // kafkajs's fetchTopicOffsets gives up at once on NOT_LEADER_FOR_PARTITION and keeps the
    // stale metadata (a broker just restarted): `check` stopped on it in a fault scenario.
    const { kafka, admins } = kafkaAnswering([
      protocolError(
        'NOT_LEADER_FOR_PARTITION',
        6,
        true,
        'This server is not the leader for that topic-partition',
      ),
      { partition: 0, high: '5', low: '0' },
    ]);
    const ends = await readEndOffsets(kafka, ['a'], { retryDelayMs: 1 });
    expect(ends.get('a:0')).toEqual({ topic: 'a', partition: 0, low: 0n, high: 5n });
    expect(admins).toEqual({ created: 2, disconnected: 2 });
  });

  it('gives up on an error asking again cannot fix, and after a few tries on one it could', async () => {
    const denied = protocolError(
      'TOPIC_AUTHORIZATION_FAILED',
      29,
      false,
      'Not authorized to access topics',
    );
    await expect(
      readEndOffsets(kafkaAnswering([denied]).kafka, ['a'], { retryDelayMs: 1 }),
    ).rejects.toBe(denied);
    const moved = () =>
      protocolError('LEADER_NOT_AVAILABLE', 5, true, 'There is no leader for this topic-partition');
    // A request that timed out is not asked again: it would only wait as long again.
    const timedOut = new KafkaJSRequestTimeoutError('Request ListOffsets(key: 2) timed out');
    await expect(
      readEndOffsets(kafkaAnswering([timedOut]).kafka, ['a'], { retryDelayMs: 1 }),
    ).rejects.toBe(timedOut);
    const { kafka, admins } = kafkaAnswering(Array.from({ length: 10 }, moved));
    await expect(readEndOffsets(kafka, ['a'], { retryDelayMs: 1, attempts: 3 })).rejects.toThrow(
      'no leader',
    );
    expect(admins).toEqual({ created: 3, disconnected: 3 });
  });
});
