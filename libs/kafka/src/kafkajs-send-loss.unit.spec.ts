/**
 * Why DurableProducer checks kafkajs's answer partition by partition: kafkajs's own send, given a
 * cluster whose partition leader dies mid-send, resolves without ever producing to that
 * partition. This drives kafkajs's real send (its internal `sendMessages`, version 2.2.4) over a
 * made-up cluster of two brokers. If an upgrade of kafkajs fixes it, this fails: the check in
 * durable-producer.ts can then go.
 */
import { KafkaJSConnectionError } from 'kafkajs';

type Send = (request: {
  acks: number;
  topicMessages: { topic: string; messages: { key: string; value: string }[] }[];
}) => Promise<{ topicName: string; partition: number }[]>;

interface Produce {
  topicData: { topic: string; partitions: { partition: number }[] }[];
}

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no types */
const sendMessages = require('kafkajs/src/producer/sendMessages') as (deps: unknown) => Send;
const createRetry = require('kafkajs/src/retry') as (options: unknown) => unknown;
/* eslint-enable @typescript-eslint/no-require-imports */

describe('kafkajs 2.2.4 send (characterisation)', () => {
  it('resolves without producing to a partition whose leader died and moved to a broker that had already answered', async () => {
    // Partition 0 is led by broker 3, partition 1 by broker 1. Broker 3 dies on the produce
    // request; the controller moves partition 0 to broker 1, which had answered for partition 1.
    const leaders: Record<number, number> = { 0: 3, 1: 1 };
    const produced: { broker: number; partitions: number[] }[] = [];
    const broker = (nodeId: number) => ({
      nodeId,
      produce: ({ topicData }: Produce) => {
        const partitions = topicData.flatMap((t) => t.partitions.map((p) => p.partition));
        if (nodeId === 3) {
          leaders[0] = 1;
          return Promise.reject(new KafkaJSConnectionError('Connection error: broker 3 died'));
        }
        produced.push({ broker: nodeId, partitions });
        return Promise.resolve({
          throttleTime: 0,
          topics: topicData.map((t) => ({
            topicName: t.topic,
            partitions: t.partitions.map((p) => ({
              partition: p.partition,
              errorCode: 0,
              baseOffset: '0',
            })),
          })),
        });
      },
    });
    const brokers: Record<number, ReturnType<typeof broker>> = { 1: broker(1), 3: broker(3) };
    const cluster = {
      refreshMetadataIfNecessary: () => Promise.resolve(),
      refreshMetadata: () => Promise.resolve(),
      addMultipleTargetTopics: () => Promise.resolve(),
      isConnected: () => true,
      removeBroker: () => undefined,
      findTopicPartitionMetadata: () => [
        { partitionId: 0, leader: leaders[0] },
        { partitionId: 1, leader: leaders[1] },
      ],
      findLeaderForPartitions: (_topic: string, partitions: string[]) =>
        partitions.reduce<Record<number, number[]>>((byLeader, p) => {
          (byLeader[leaders[Number(p)]!] ??= []).push(Number(p));
          return byLeader;
        }, {}),
      findBroker: ({ nodeId }: { nodeId: string }) => Promise.resolve(brokers[Number(nodeId)]),
    };
    const eosManager = {
      acquireBrokerLock: () => Promise.resolve(),
      releaseBrokerLock: () => Promise.resolve(),
      isTransactional: () => false,
      getSequence: () => 0,
      updateSequence: () => undefined,
      getProducerId: () => 1,
      getProducerEpoch: () => 0,
    };
    const quiet = () => undefined;
    const send = sendMessages({
      logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
      cluster,
      partitioner: ({ message }: { message: { key: string } }) => Number(message.key),
      eosManager,
      retrier: createRetry({ retries: 3, initialRetryTime: 1 }),
    });

    const answer = await send({
      acks: -1,
      topicMessages: [
        {
          topic: 'outcomes',
          messages: [
            { key: '0', value: 'a' },
            { key: '1', value: 'b' },
          ],
        },
      ],
    });

    expect(answer.map((m) => m.partition)).toEqual([1]);
    expect(produced).toEqual([{ broker: 1, partitions: [1] }]);
  });
});
