import { encodeEvent, topicName } from '@cashflow/contracts';
import { ensureTopics } from '@cashflow/kafka';
import { randomUUID } from 'node:crypto';
import { read } from '../../../apps/cli/src/log-reader';
import { uniqueTopicPrefix } from '../../support/infra';
import { testKafka } from '../../support/kafka';
import { eventsFor } from '../../support/refresh-histories';

/** The CLI's log reader (`check`, `dlq`) on the real broker. */
describe('log reader', () => {
  it('reads to the end of a partition whose last records are transaction markers', async () => {
    const prefix = uniqueTopicPrefix();
    const kafka = testKafka(prefix);
    await ensureTopics(kafka, { prefix, partitions: 1, replicationFactor: 1 });
    const topic = topicName('refreshRequested', prefix);
    const producer = kafka.producer({
      transactionalId: `test-${randomUUID()}`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    try {
      const e = eventsFor(`item-${randomUUID()}`);
      for (const [id, end] of [
        ['r1', 'commit'],
        ['r2', 'abort'],
      ] as const) {
        const transaction = await producer.transaction();
        await transaction.send({ topic, messages: [encodeEvent(e.requested(id))] });
        await transaction[end]();
      }
    } finally {
      await producer.disconnect();
    }

    const offsets: string[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      read(kafka, [topic], { fromBeginning: true, toEnd: true }, ({ message }) => {
        offsets.push(message.offset);
      }).then(() => 'finished'),
      new Promise((resolve) => (timer = setTimeout(() => resolve('still reading'), 20_000))),
    ]).finally(() => clearTimeout(timer));
    expect(finished).toBe('finished');
    // The committed record only: its marker, the aborted record and its marker are not shown.
    expect(offsets).toEqual(['0']);
  });
});
