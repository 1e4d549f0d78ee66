// A fresh broker creates its group-offsets and producer-state machinery on first use, and its
// coordinators answer "loading" for a while after that. The first tests to run would meet it
// (their consumer groups and idempotent producers waiting, sometimes past their time-outs): this
// waits for it once, before them. Usage: KAFKA_BROKERS=host:port node scripts/kafka/warm-up.mjs
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;

async function main() {
  const kafka = new Kafka({
    brokers: (process.env.KAFKA_BROKERS || '127.0.0.1:19092').split(','),
    clientId: 'cashflow-warm-up',
    logLevel: logLevel.NOTHING,
  });
  const deadline = Date.now() + 120000;
  for (;;) {
    const admin = kafka.admin();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    try {
      await admin.connect();
      await admin.describeGroups(['cashflow-warm-up']);
      await admin.fetchOffsets({ groupId: 'cashflow-warm-up', topics: [] });
      await producer.connect();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    } finally {
      await producer.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    }
  }
}

main().then(
  () => process.stderr.write('[test] kafka: coordinators ready\n'),
  (error) => {
    process.stderr.write(`[test] kafka: coordinators not ready after 120 s: ${error.message}\n`);
    process.exit(1);
  },
);
