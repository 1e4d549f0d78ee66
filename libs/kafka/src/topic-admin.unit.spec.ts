import type { Kafka } from 'kafkajs';
import { assertTopicsExist, minInsyncReplicasFor } from './topic-admin';

describe('minInsyncReplicasFor', () => {
  it('asks for two replicas whenever the topic has two or more, one for a single replica', () => {
    expect([1, 2, 3, 5].map(minInsyncReplicasFor)).toEqual([1, 2, 2, 2]);
  });
});

describe('assertTopicsExist', () => {
  /** A client whose broker answers each listTopics with the next of `answers` (then the last). */
  function kafkaAnswering(...answers: string[][]) {
    const admin = {
      listTopics: jest.fn(() =>
        Promise.resolve(answers.length > 1 ? answers.shift()! : answers[0]!),
      ),
      connect: jest.fn(() => Promise.resolve()),
      disconnect: jest.fn(() => Promise.resolve()),
    };
    return { kafka: { admin: () => admin } as unknown as Kafka, admin };
  }

  it('asks again when a first answer leaves topics out, and passes once they are there', async () => {
    const { kafka, admin } = kafkaAnswering([], ['a'], ['a', 'b', 'other']);

    await expect(assertTopicsExist(kafka, ['a', 'b'], { intervalMs: 1 })).resolves.toBeUndefined();
    expect(admin.listTopics).toHaveBeenCalledTimes(3);
    expect(admin.disconnect).toHaveBeenCalled();
  });

  it('fails naming the topics still missing after its attempts, and how to create them', async () => {
    const { kafka, admin } = kafkaAnswering(['a']);

    await expect(
      assertTopicsExist(kafka, ['a', 'b', 'c'], { attempts: 3, intervalMs: 1 }),
    ).rejects.toThrow(
      'missing Kafka topics b, c: create them with `cashflow-refresh topics create`',
    );
    expect(admin.listTopics).toHaveBeenCalledTimes(3);
    expect(admin.disconnect).toHaveBeenCalled();
  });
});
