import { topicName } from '@cashflow/contracts';
import { DurableProducer, NotStoredError, ensureTopics } from '@cashflow/kafka';
import type { Kafka } from 'kafkajs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, testKafka } from '../support/kafka';
import { freePort } from '../support/ports';
import { REPO_ROOT } from '../support/processes';

/**
 * `LOCAL_KAFKA_NODES=3 scripts/local-infra.sh`: three replicating KRaft nodes on loopback, in a
 * state dir and on ports of the test's own. What a production cluster promises, on the real
 * brokers: the project's topics get three replicas and min.insync.replicas 2; an acknowledged
 * record survives the loss of its partition's leader; with two of three nodes down nothing is
 * acknowledged (the ingress's 503), and everything acknowledged is still there once they return.
 */
describe('a three-node Kafka cluster from local-infra.sh', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'cashflow-cluster-'));
  const prefix = 'cluster.';
  const topic = topicName('refreshRequested', prefix);
  let env: NodeJS.ProcessEnv;
  let kafka: Kafka;
  let producer: DurableProducer;
  const acknowledged: string[] = [];

  const infra = (...args: string[]) => {
    const result = spawnSync('bash', [join(REPO_ROOT, 'scripts/local-infra.sh'), ...args], {
      env,
      encoding: 'utf8',
    });
    // The exit status with the script's output, so a failure shows why.
    return { ...result, shown: `${result.status}\n${result.stdout}${result.stderr}` };
  };

  /** Sends one record; true when Kafka acknowledged it (acks=all, two in-sync replicas). */
  async function send(value: string): Promise<boolean> {
    try {
      await producer.send([{ topic, message: { key: 'item-1', value } }]);
      acknowledged.push(value);
      return true;
    } catch (error) {
      if (error instanceof NotStoredError) return false;
      throw error;
    }
  }

  /** Sends `value` (numbered) until one is acknowledged, up to 6 tries of 8 s. */
  async function sendUntilAcknowledged(value: string): Promise<boolean> {
    for (let i = 0; i < 6; i += 1) if (await send(`${value} ${i}`)) return true;
    return false;
  }

  /** The node leading partition 0 of the topic, from the cluster's metadata. */
  async function leaderOfPartition0(): Promise<number> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      return topics[0]!.partitions.find((p) => p.partitionId === 0)!.leader;
    } finally {
      await admin.disconnect();
    }
  }

  beforeAll(async () => {
    const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    env = {
      ...process.env,
      CASHFLOW_LOCAL_DIR: stateDir,
      LOCAL_KAFKA_NODES: '3',
      LOCAL_KAFKA_PORTS: ports.slice(0, 3).join(','),
      LOCAL_KAFKA_CONTROLLER_PORTS: ports.slice(3).join(','),
    };
    const started = infra('start', 'kafka');
    expect(started.shown).toMatch(/^0\n/);
    const brokers = /KAFKA_BROKERS=(\S+)/.exec(infra('env').stdout)![1]!.split(',');
    expect(brokers).toEqual(ports.slice(0, 3).map((p) => `127.0.0.1:${p}`));
    kafka = testKafka(prefix, brokers);
    // A send that cannot reach two replicas is answered "not stored" within this time.
    producer = new DurableProducer(kafka, { timeoutMs: 8_000 });
    await producer.connect();
  }, 180_000);

  afterAll(async () => {
    await producer?.disconnect().catch(() => undefined);
    infra('reset');
    rmSync(stateDir, { recursive: true, force: true });
  }, 120_000);

  it('runs three nodes, each on its own port, and says so', () => {
    const status = infra('status', 'kafka');
    expect(status.shown).toMatch(/^0\n/);
    expect(status.stdout.match(/^kafka-[123]: running on 127\.0\.0\.1:\d+/gm)).toHaveLength(3);
  });

  it("creates the project's topics with three replicas and min.insync.replicas 2", async () => {
    await ensureTopics(kafka, { prefix, partitions: 3, replicationFactor: 3 });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      for (const p of topics[0]!.partitions) expect(p.replicas).toHaveLength(3);
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: topic, configNames: ['min.insync.replicas'] }],
      });
      expect(resources[0]!.configEntries[0]!.configValue).toBe('2');
    } finally {
      await admin.disconnect();
    }
    expect(await send('before any fault')).toBe(true);
  }, 60_000);

  it("acknowledges writes after its partition's leader is killed, and keeps what it acknowledged", async () => {
    const leader = await leaderOfPartition0();
    expect(infra('kill', `kafka-${leader}`).shown).toMatch(/^0\n/);
    // Sends are acknowledged again once the dead leader is fenced (broker.session.timeout.ms,
    // 9 s) and a follower leads; until then they are answered "not stored", never lost quietly.
    expect(await sendUntilAcknowledged('after the leader died')).toBe(true);
    expect(await leaderOfPartition0()).not.toBe(leader);
    expect(infra('start', `kafka-${leader}`).shown).toMatch(/^0\n/);
  }, 120_000);

  it('acknowledges nothing with two of three nodes down, and everything acknowledged is there once they return', async () => {
    const leader = await leaderOfPartition0();
    const others = [1, 2, 3].filter((n) => n !== leader);
    // The leader stays: it could take the write alone, and must not acknowledge it.
    for (const n of others) expect(infra('stop', `kafka-${n}`).shown).toMatch(/^0\n/);
    expect(await send('with one replica left')).toBe(false);
    for (const n of others) expect(infra('start', `kafka-${n}`).shown).toMatch(/^0\n/);
    // Sends succeed again once a second replica is back in sync.
    expect(await sendUntilAcknowledged('after the return')).toBe(true);

    const reader = await collect(kafka, [topic]);
    try {
      const values = (await reader.toEnd(30_000)).map((r) => r.message.value?.toString());
      expect(values).toEqual(expect.arrayContaining(acknowledged));
    } finally {
      await reader.stop();
    }
  }, 180_000);
});
