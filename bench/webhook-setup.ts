/**
 * What the webhook benches share: a stand-in for Plaid's signing key and its key endpoint,
 * signed CASHFLOW_REPORT_READY webhooks, topics, an ingress (or the bare server) to send them to,
 * autocannon's load, and a count of what reached the report topic.
 */
import { DEFAULT_PARTITIONS, topicName } from '@cashflow/contracts';
import { createKafka, ensureTopics, readEndOffsets } from '@cashflow/kafka';
import { createLogger } from '@cashflow/observability';
import autocannon from 'autocannon';
import { createHash, generateKeyPairSync, randomBytes, sign as signBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { benchPrefix, freePort, run, waitUntil, type Proc } from './support';

const PATH = '/webhooks/plaid';
const logger = createLogger({ service: 'bench', level: 'error' });

export interface Signed {
  readonly body: Buffer;
  readonly jwt: string;
}

/** A P-256 signing key standing in for Plaid's, with the JWK Plaid would publish for it. */
export function plaidKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = randomBytes(16).toString('hex');
  const { x, y } = publicKey.export({ format: 'jwk' });
  const jwk = {
    alg: 'ES256',
    crv: 'P-256',
    kid,
    kty: 'EC',
    use: 'sig',
    x,
    y,
    created_at: 0,
    expired_at: null,
  };
  return { privateKey, kid, jwk };
}
export type PlaidKey = ReturnType<typeof plaidKey>;

/** Plaid's /webhook_verification_key/get, answering for the one key. */
export async function keyServer(key: PlaidKey): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { key_id } = JSON.parse(Buffer.concat(chunks).toString() || '{}') as {
        key_id?: string;
      };
      const found = key_id === key.kid;
      res.writeHead(found ? 200 : 400, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          found
            ? { key: key.jwk, request_id: 'bench' }
            : {
                error_type: 'INVALID_REQUEST',
                error_code: 'INVALID_FIELD',
                error_message: 'no key',
              },
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * A Plaid-Verification JWT (ES256) for `body`, signed with node:crypto directly: hundreds of
 * thousands are prepared per run, and jose's async WebCrypto path is several times slower.
 */
function jwtFor(body: Buffer, key: PlaidKey, iat: number): string {
  const input = `${b64url({ alg: 'ES256', kid: key.kid, typ: 'JWT' })}.${b64url({
    iat,
    request_body_sha256: createHash('sha256').update(body).digest('hex'),
  })}`;
  const signature = signBytes('sha256', Buffer.from(input), {
    key: key.privateKey,
    dsaEncoding: 'ieee-p1363',
  });
  return `${input}.${signature.toString('base64url')}`;
}

export function sign(key: PlaidKey, count: number): Signed[] {
  const run = randomBytes(4).toString('hex');
  const iat = Math.floor(Date.now() / 1000);
  const out: Signed[] = [];
  for (let i = 0; i < count; i++) {
    const body = Buffer.from(
      `${JSON.stringify(
        {
          webhook_type: 'CASHFLOW_REPORT',
          webhook_code: 'CASHFLOW_REPORT_READY',
          item_id: `bench-${run}-${i}`,
          error: null,
          environment: 'sandbox',
        },
        null,
        2,
      )}\n`,
    );
    out.push({ body, jwt: jwtFor(body, key, iat) });
  }
  return out;
}

export async function topics(brokers: string, replicationFactor = 1): Promise<string> {
  const prefix = benchPrefix(brokers);
  const kafka = createKafka({
    brokers: brokers.split(','),
    clientId: 'bench',
    topicPrefix: prefix,
    logger,
  });
  await ensureTopics(kafka, { prefix, partitions: DEFAULT_PARTITIONS, replicationFactor });
  return prefix;
}

/** The ids (ce_id) of every event on the report topic, read to its end offsets. */
export async function storedIds(brokers: string, prefix: string): Promise<Set<string>> {
  const kafka = createKafka({
    brokers: brokers.split(','),
    clientId: 'bench',
    topicPrefix: prefix,
    logger,
  });
  const topic = topicName('reportOutcomes', prefix);
  const ends = await readEndOffsets(kafka, [topic]);
  const total = [...ends.values()].reduce((sum, p) => sum + Number(p.high), 0);
  const ids = new Set<string>();
  let read = 0;
  const consumer = kafka.consumer({
    groupId: `${prefix}counter-${randomBytes(3).toString('hex')}`,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const message of batch.messages) ids.add(String(message.headers?.ce_id));
      read += batch.messages.length;
      return Promise.resolve();
    },
  });
  await waitUntil(
    'the report topic read to its end',
    () => (read >= total ? true : undefined),
    120_000,
  );
  await consumer.disconnect();
  return ids;
}

export type Target = 'ingress' | 'bare';

export async function start(
  target: Target,
  brokers: string,
  prefix: string,
  plaidUrl: string,
): Promise<{ proc: Proc; url: string }> {
  const port = await freePort();
  const env = {
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC_PREFIX: prefix,
    PLAID_ENV: 'local',
    PLAID_SANDBOX_URL: plaidUrl,
    WEBHOOK_INGRESS_PORT: String(port),
    WEBHOOK_INGRESS_ADMIN_PORT: String(await freePort()),
    LOG_LEVEL: 'warn',
  };
  const entry =
    target === 'ingress' ? 'apps/webhook-ingress/src/main.js' : 'bench/bare-ingress/main.js';
  // BENCH_INGRESS_NODE_FLAGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`): node flags for both
  // servers, to profile them side by side (a profile per run, in the order the runs are made).
  const flags = (process.env.BENCH_INGRESS_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  const proc = run(entry, env, flags);
  const url = `http://127.0.0.1:${port}${PATH}`;
  await waitUntil(
    `${target} to answer`,
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`${target} exited: ${proc.output()}`);
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      }).catch(() => undefined);
      return response?.status === 401 ? true : undefined;
    },
    60_000,
  );
  return { proc, url };
}

export async function load(
  url: string,
  pool: Signed[],
  duration: number,
  options: { rate?: number; connections: number },
) {
  const { rate, connections } = options;
  let next = 0;
  let wrapped = false;
  const answered = new Set<string>();
  const result = await autocannon({
    url,
    method: 'POST',
    connections,
    duration,
    ...(rate ? { overallRate: rate } : {}),
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (request) => {
          if (next >= pool.length) {
            next = 0;
            wrapped = true;
          }
          const signed = pool[next++]!;
          return {
            ...request,
            body: signed.body,
            headers: { ...request.headers, 'plaid-verification': signed.jwt },
          };
        },
        onResponse: (status, body) => {
          if (status === 200) answered.add((JSON.parse(body) as { event_id: string }).event_id);
        },
      },
    ],
  });
  return { result, answered, wrapped };
}
