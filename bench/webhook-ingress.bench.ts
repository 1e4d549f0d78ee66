/**
 * Webhook ingress benchmark: prints a table and writes bench/results/<date>-webhook-ingress.json.
 *
 *   npm run bench:ingress              # 30 s per run
 *   npm run bench:ingress -- --quick   # 5 s per run
 *
 * autocannon sends validly signed CASHFLOW_REPORT_READY webhooks (each with its own JWT, for its
 * own Item) over loopback to:
 *   - the ingress (NestJS on Fastify, dist/apps/webhook-ingress), and
 *   - a bare node:http server (bench/bare-ingress) running the same pipeline: the same
 *     verification, the same replay ledger and the same durable Kafka send.
 * Each is run flat out (throughput) and at a fixed 500 webhooks/s (latency), each run on topics
 * of its own and after a few seconds of the same load as warm-up; afterwards the events on the topic are counted against the 200s answered.
 * Plaid's verification keys come from a small key server in this process.
 */
import { DEFAULT_PARTITIONS, topicName } from '@cashflow/contracts';
import { createKafka, ensureTopics, readEndOffsets } from '@cashflow/kafka';
import { createLogger } from '@cashflow/observability';
import autocannon from 'autocannon';
import { createHash, generateKeyPairSync, randomBytes, sign as signBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ensureInfra,
  freePort,
  machine,
  processSampler,
  run,
  stopAll,
  stopInfra,
  table,
  waitUntil,
  writeResults,
  runBench,
  type Proc,
} from './support';

const quick = process.argv.includes('--quick');
const DURATION_S = quick ? 5 : 30;
/** Load sent before each measured run, at the same rate, and left out of its figures. */
const WARMUP_S = quick ? 2 : 5;
const FIXED_RATE = 500;
/** Signed requests prepared per flat-out run: more than any run here has sent. */
const POOL = quick ? 60_000 : 400_000;
const CONNECTIONS = 64;
const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:19092';
const PATH = '/webhooks/plaid';
const logger = createLogger({ service: 'bench', level: 'error' });

interface Signed {
  readonly body: Buffer;
  readonly jwt: string;
}

/** A P-256 signing key standing in for Plaid's, with the JWK Plaid would publish for it. */
function plaidKey() {
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
type PlaidKey = ReturnType<typeof plaidKey>;

/** Plaid's /webhook_verification_key/get, answering for the one key. */
async function keyServer(key: PlaidKey): Promise<{ url: string; server: Server }> {
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

function sign(key: PlaidKey, count: number): Signed[] {
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

async function topics(): Promise<string> {
  const prefix = `bench-${randomBytes(3).toString('hex')}.`;
  const kafka = createKafka({
    brokers: BROKERS.split(','),
    clientId: 'bench',
    topicPrefix: prefix,
    logger,
  });
  await ensureTopics(kafka, { prefix, partitions: DEFAULT_PARTITIONS, replicationFactor: 1 });
  return prefix;
}

/** The ids (ce_id) of every event on the report topic, read to its end offsets. */
async function storedIds(prefix: string): Promise<Set<string>> {
  const kafka = createKafka({
    brokers: BROKERS.split(','),
    clientId: 'bench',
    topicPrefix: prefix,
    logger,
  });
  const topic = topicName('reportOutcomes', prefix);
  const ends = await readEndOffsets(kafka, [topic]);
  const total = [...ends.values()].reduce((sum, p) => sum + Number(p.high), 0);
  const ids = new Set<string>();
  let read = 0;
  const consumer = kafka.consumer({ groupId: `${prefix}counter` });
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

type Target = 'ingress' | 'bare';

async function start(
  target: Target,
  prefix: string,
  plaidUrl: string,
): Promise<{ proc: Proc; url: string }> {
  const port = await freePort();
  const env = {
    KAFKA_BROKERS: BROKERS,
    KAFKA_TOPIC_PREFIX: prefix,
    PLAID_ENV: 'local',
    PLAID_SANDBOX_URL: plaidUrl,
    WEBHOOK_INGRESS_PORT: String(port),
    WEBHOOK_INGRESS_ADMIN_PORT: String(await freePort()),
    LOG_LEVEL: 'warn',
  };
  const entry =
    target === 'ingress' ? 'apps/webhook-ingress/src/main.js' : 'bench/bare-ingress/main.js';
  const proc = run(entry, env);
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

async function load(url: string, pool: Signed[], duration: number, rate?: number) {
  let next = 0;
  let wrapped = false;
  const answered = new Set<string>();
  const result = await autocannon({
    url,
    method: 'POST',
    connections: rate ? 32 : CONNECTIONS,
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

async function scenario(target: Target, key: PlaidKey, plaidUrl: string, rate?: number) {
  const warmup = sign(key, rate ? rate * WARMUP_S + 1_000 : POOL / 4);
  const pool = sign(key, rate ? rate * DURATION_S + 2_000 : POOL);
  const prefix = await topics();
  const { proc, url } = await start(target, prefix, plaidUrl);
  // Warm-up: the same load for a few seconds first, so neither server is measured while its
  // code is still being compiled. Its events are left out of the counts below.
  const warm = await load(url, warmup, WARMUP_S, rate);
  const sampler = processSampler(proc.child.pid!);
  const { result, answered, wrapped } = await load(url, pool, DURATION_S, rate);
  sampler.stop();
  await proc.stop();
  const ok = result['2xx'];
  const ids = await storedIds(prefix);
  for (const id of warm.answered) ids.delete(id);
  const lost = [...answered].filter((id) => !ids.has(id)).length;
  return {
    target,
    mode: rate ? `${rate}/s` : 'flat out',
    webhooks_per_s: Math.round((ok / DURATION_S) * 10) / 10,
    answered_200: ok,
    non_2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    events_on_topic: ids.size,
    // Answered 200 but not on the topic. (Events beyond the 200s are requests still in flight
    // when the run ended: stored, their answers not counted.)
    lost,
    pool_exhausted: wrapped,
    peak_rss_mb: sampler.peakMb,
    cpu_s: sampler.cpuSeconds,
  };
}

async function main() {
  const started = ensureInfra();
  const key = plaidKey();
  const plaid = await keyServer(key);
  try {
    const runs = [];
    for (const target of ['ingress', 'bare'] as const)
      runs.push(await scenario(target, key, plaid.url));
    for (const target of ['ingress', 'bare'] as const) {
      runs.push(await scenario(target, key, plaid.url, FIXED_RATE));
    }
    const [nest, bare, nestFixed, bareFixed] = runs;
    const share = Math.round((nest!.webhooks_per_s / bare!.webhooks_per_s) * 1000) / 10;
    const result = {
      date: new Date().toISOString(),
      quick,
      duration_s: DURATION_S,
      machine: machine(),
      runs,
      share_of_bare_pct: share,
    };

    const rows: (string | number)[][] = [
      ['run', 'webhooks/s', 'p50 / p99 ms', '200s', 'events', 'lost', 'non-2xx', 'RSS MB', 'CPU s'],
      ...runs.map((r) => [
        `${r.target} ${r.mode}`,
        r.webhooks_per_s,
        `${r.p50_ms} / ${r.p99_ms}`,
        r.answered_200,
        r.events_on_topic,
        r.lost,
        r.non_2xx + r.errors,
        r.peak_rss_mb,
        r.cpu_s,
      ]),
    ];
    const targets: (string | number)[][] = [
      ['measure', 'value', 'target'],
      ['ingress throughput / bare node:http (%)', share, '>= 70'],
      [`ingress p99 at ${FIXED_RATE}/s (ms)`, nestFixed!.p99_ms, '< 50'],
      [`bare p99 at ${FIXED_RATE}/s (ms)`, bareFixed!.p99_ms, ''],
      ['webhooks lost (answered 200, not on the topic)', runs.reduce((s, r) => s + r.lost, 0), '0'],
    ];
    if (runs.some((r) => r.pool_exhausted)) {
      targets.push(['WARNING: a run sent more than its signed pool (duplicates)', 'yes', 'no']);
    }
    process.stdout.write(`\n${table(rows)}\n\n${table(targets)}\n\n`);
    writeResults('webhook-ingress', quick, result);
  } finally {
    plaid.server.close();
    await stopAll();
    stopInfra(started);
  }
}

runBench(main);
