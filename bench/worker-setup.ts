/**
 * What the refresh worker benches share: Items with tokens in the vault, a Plaid sandbox that
 * knows them, worker processes, and topics with a reader that notes when each outcome arrives.
 */
import { TokenCipher } from '@cashflow/access-tokens';
import { createEvent, topicName, type RefreshRequested } from '@cashflow/contracts';
import { EventPublisher, createKafka, ensureTopics } from '@cashflow/kafka';
import { createLogger } from '@cashflow/observability';
import type { Kafka } from 'kafkajs';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { benchPrefix, freePort, run, waitForHttp, type Proc } from './support';

const logger = createLogger({ service: 'bench', level: 'error' });
/** The vault's key for every bench run of this process. */
export const KEYS = `bench:${randomBytes(32).toString('base64')}`;
/**
 * The flags docker-compose.yml and scripts/run-local.sh start the worker with. The throughput
 * scenario also runs without them, so the table shows what they buy and what they cost.
 */
export const WORKER_NODE_FLAGS = process.env.BENCH_WORKER_NODE_FLAGS?.split(' ').filter(
  Boolean,
) ?? ['--heap-growing-percent=20', '--max-semi-space-size=32'];

export const itemId = (i: number) => `bench-item-${i}`;
const token = (i: number) => `access-sandbox-bench-${String(i).padStart(8, '0')}`;

/** Registers tokens straight into the vault's table (the API would take minutes for 20,000). */
export async function registerTokens(url: string, count: number): Promise<void> {
  const cipher = new TokenCipher(
    new Map([['bench', Buffer.from(KEYS.split(':')[1]!, 'base64')]]),
    'bench',
  );
  const client = new Client({ connectionString: url });
  await client.connect();
  for (let start = 0; start < count; start += 1000) {
    const params: unknown[] = [];
    const rows: string[] = [];
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      const sealed = cipher.seal(itemId(i), token(i));
      const b = params.length;
      params.push(itemId(i), sealed.keyId, sealed.iv, sealed.ciphertext, sealed.authTag, 'bench');
      rows.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6})`);
    }
    await client.query(
      `INSERT INTO item_access_tokens (item_id, key_id, iv, ciphertext, auth_tag, registered_by) VALUES ${rows.join(',')}`,
      params,
    );
  }
  await client.end();
}

export async function sandbox(
  count: number,
  env: Record<string, string>,
): Promise<{ proc: Proc; url: string }> {
  const seed = join(tmpdir(), `bench-seed-${randomUUID()}.json`);
  const items = Array.from({ length: count }, (_, i) => ({
    item_id: itemId(i),
    access_token: token(i),
    webhook: null,
    transactions_per_account: 0,
  }));
  writeFileSync(seed, JSON.stringify(items));
  const port = await freePort();
  const proc = run('apps/plaid-sandbox/src/main.js', {
    PLAID_SANDBOX_PORT: String(port),
    PLAID_SANDBOX_SEED_FILE: seed,
    PLAID_SANDBOX_EXTRACTION_DELAY_MS: '0',
    LOG_LEVEL: 'warn',
    ...env,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/health/ready`, proc);
  return { proc, url };
}

export async function sandboxAnswers(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const answers: Record<string, number> = {};
  for (const match of text.matchAll(
    /plaid_sandbox_refresh_answers_total\{[^}]*error_code="([^"]+)"[^}]*\} (\d+)/g,
  )) {
    answers[match[1]!] = Number(match[2]);
  }
  return answers;
}

export async function worker(
  brokers: string,
  env: Record<string, string>,
  nodeFlags = WORKER_NODE_FLAGS,
): Promise<Proc> {
  const port = await freePort();
  const proc = run(
    'apps/refresh-worker/src/main.js',
    {
      KAFKA_BROKERS: brokers,
      REFRESH_WORKER_PORT: String(port),
      TOKEN_ENCRYPTION_KEYS: KEYS,
      ADMIN_API_TOKENS: `bench:${randomBytes(24).toString('hex')}`,
      LOG_LEVEL: 'warn',
      ...env,
    },
    nodeFlags,
  );
  await waitForHttp(`http://127.0.0.1:${port}/health/ready`, proc);
  return proc;
}

/** Topics with a fresh prefix and a reader that notes when each request's outcome arrives. */
export async function topics(brokers: string, partitions: number, replicationFactor = 1) {
  const prefix = benchPrefix(brokers);
  const kafka: Kafka = createKafka({
    brokers: brokers.split(','),
    clientId: 'bench',
    topicPrefix: prefix,
    logger,
  });
  await ensureTopics(kafka, { prefix, partitions, replicationFactor });
  const arrived = new Map<
    string,
    { at: number; leader: boolean; plaidRequestId: string | undefined }
  >();
  const consumer = kafka.consumer({ groupId: `${prefix}reader`, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topicName('refreshOutcomes', prefix)], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const message of batch.messages) {
        const data = JSON.parse(message.value?.toString() ?? '{}') as {
          refresh_request_id: string;
          coalesced_into?: string;
          plaid_request_id?: string;
        };
        if (!arrived.has(data.refresh_request_id)) {
          arrived.set(data.refresh_request_id, {
            at: now,
            leader: !data.coalesced_into,
            plaidRequestId: data.plaid_request_id,
          });
        }
      }
      await Promise.resolve();
    },
  });
  const publisher = new EventPublisher(kafka, prefix);
  await publisher.connect();
  const sent = new Map<string, number>();
  return {
    prefix,
    arrived,
    sent,
    async publish(items: number[]) {
      for (let start = 0; start < items.length; start += 1000) {
        const events: RefreshRequested[] = items
          .slice(start, start + 1000)
          .map((i) =>
            createEvent(
              'RefreshRequested',
              { item_id: itemId(i), days_requested: 90 },
              { id: randomUUID(), source: 'urn:bench', time: new Date().toISOString() },
            ),
          );
        const now = Date.now();
        events.forEach((e) => sent.set(e.metadata.id, now));
        await publisher.publish(...events);
      }
    },
    async close() {
      await consumer.disconnect();
      await publisher.disconnect();
    },
  };
}

/**
 * How close rate-limited calls came to the allowed rate: a perfect client makes `limit` calls at
 * the start of each window, so the calls (those Plaid accepted) ideally span
 * windowMs * (ceil(calls / limit) - 1); the share is that over the span of the leaders' outcomes
 * (requests answered by a call of their own).
 */
export async function allowedRateShare(
  arrived: ReadonlyMap<string, { at: number; leader: boolean }>,
  sandboxUrl: string,
  windowMs: number,
  limit: number,
) {
  const leaders = [...arrived.values()]
    .filter((a) => a.leader)
    .map((a) => a.at)
    .sort((a, b) => a - b);
  const answers = await sandboxAnswers(sandboxUrl);
  const calls = answers.none ?? 0;
  const actual = leaders[leaders.length - 1]! - leaders[0]!;
  const ideal = windowMs * (Math.ceil(calls / limit) - 1);
  return {
    firstLeaderAt: leaders[0]!,
    plaid_calls: calls,
    leaders: leaders.length,
    rate_limited_429: answers.RATE_LIMIT ?? 0,
    // Within one window the limit is never reached: nothing to measure.
    share_of_allowed_rate: ideal > 0 && actual > 0 ? Math.round((ideal / actual) * 1000) / 10 : 100,
  };
}
