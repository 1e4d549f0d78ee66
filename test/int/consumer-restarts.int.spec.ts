import { restartWhenGivenUp } from '@cashflow/kafka';
import { KafkaJSNonRetriableError, type Kafka } from 'kafkajs';
import { uniqueSuffix } from '../support/infra';
import { quietLogger, testKafka, topicOfNumbers } from '../support/kafka';
import { waitFor } from '../support/wait-for';

/**
 * A kafkajs consumer that crashes on an error kafkajs does not retry (after a Kafka outage,
 * 'Failed to find group coordinator' is one) is stopped for good by kafkajs; the apps'
 * consumers start again. Here the crash is provoked from the batch handler, the one place a
 * test can raise such an error on the real broker at will.
 */
describe('a consumer kafkajs gives up, against the real broker', () => {
  let kafka: Kafka;
  const topic = `test-restarts-${uniqueSuffix()}`;

  beforeAll(async () => {
    kafka = testKafka('');
    await topicOfNumbers(kafka, topic, 10);
  });

  it('is connected and run again, and reads on from where it was committed', async () => {
    const consumer = kafka.consumer({ groupId: `g-${uniqueSuffix()}`, maxWaitTimeInMs: 100 });
    const crashes: boolean[] = [];
    consumer.on(consumer.events.CRASH, (e) => crashes.push(e.payload.restart));
    const seen: string[] = [];
    let crashed = false;
    const run = () =>
      consumer.run({
        eachMessage: async ({ message }) => {
          if (message.offset === '5' && !crashed) {
            crashed = true;
            throw new KafkaJSNonRetriableError('a failure kafkajs does not retry');
          }
          seen.push(message.offset);
          await Promise.resolve();
        },
      });
    let stopping = false;
    const restarts = restartWhenGivenUp(consumer, {
      run,
      stopping: () => stopping,
      logger: quietLogger,
      delayMs: 200,
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await run();
    try {
      await waitFor('all ten messages read', () => (seen.length >= 10 ? true : undefined));
      // kafkajs gave the consumer up (restart: false) and it was started again once.
      expect(crashes).toEqual([false]);
      expect(restarts()).toBe(1);
      expect(seen.filter((o) => o === '5')).toEqual(['5']);
      expect(new Set(seen)).toEqual(new Set(Array.from({ length: 10 }, (_, i) => String(i))));
    } finally {
      stopping = true;
      await consumer.disconnect();
    }
  });
});
