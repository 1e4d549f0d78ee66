import { loggerInto } from './logs';
import { decodeEvent, topicName, type CashflowEvent } from '@cashflow/contracts';
import { ensureTopics } from '@cashflow/kafka';
import { loadWebhookIngressConfig } from '../../apps/webhook-ingress/src/config';
import { startWebhookIngress } from '../../apps/webhook-ingress/src/start-ingress';
import { KAFKA_BROKERS, uniqueTopicPrefix } from './infra';
import { collect, testKafka, type Received } from './kafka';
import { startSandbox, type Sandbox } from './plaid-sandbox';
import { freePort } from './ports';

/** A CASHFLOW_REPORT_READY body as the sandbox sends it (pretty-printed), with overrides. */
export const webhookBody = (itemId: string, extra: Record<string, unknown> = {}) =>
  Buffer.from(
    `${JSON.stringify(
      {
        webhook_type: 'CASHFLOW_REPORT',
        webhook_code: 'CASHFLOW_REPORT_READY',
        item_id: itemId,
        error: null,
        environment: 'sandbox',
        ...extra,
      },
      null,
      2,
    )}\n`,
  );

/** A Plaid-Verification JWT from the sandbox's newest key for exactly these bytes. */
export async function plaidSigned(sandbox: Sandbox, body: Buffer, iat?: number): Promise<string> {
  const query = iat === undefined ? '' : `?iat=${iat}`;
  const response = await fetch(`${sandbox.url}/sandbox/webhook_keys/sign${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  if (response.status !== 200) throw new Error(`sign: ${response.status}`);
  return ((await response.json()) as { jwt: string }).jwt;
}

export async function currentKid(sandbox: Sandbox): Promise<string> {
  const { body } = await sandbox.admin('GET', '/webhook_keys');
  const keys = body.keys as { kid: string; expired_at: number | null }[];
  return keys[keys.length - 1]!.kid;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any;
}

/** The ingress running in this process (both its apps, on loopback ports) with captured logs. */
export async function startIngress(env: Record<string, string>) {
  const port = await freePort();
  const adminPort = await freePort();
  const config = loadWebhookIngressConfig({
    KAFKA_BROKERS: KAFKA_BROKERS.join(','),
    PLAID_ENV: 'local',
    WEBHOOK_INGRESS_PORT: String(port),
    WEBHOOK_INGRESS_ADMIN_PORT: String(adminPort),
    LOG_LEVEL: 'info',
    ...env,
  });
  const logLines: string[] = [];
  const logger = loggerInto(logLines, 'webhook-ingress', 'info', (line) => {
    if (process.env.SHOW_INGRESS_LOGS && /"level":"(warn|error|fatal)"/.test(line)) {
      process.stderr.write(line);
    }
  });
  const ingress = await startWebhookIngress(config, logger);
  const url = `http://127.0.0.1:${port}${config.webhook.path}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  return {
    url,
    adminUrl,
    config,
    logLines,
    /** POSTs `body` (bytes exactly as given) with headers; content type JSON unless overridden. */
    async post(body: Buffer | string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
      const text = await response.text();
      return {
        status: response.status,
        headers: response.headers,
        body: text ? (JSON.parse(text) as unknown) : undefined,
      };
    },
    /** A metric's value from /metrics (summing every series whose labels include `labels`). */
    async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
      const text = await (await fetch(`${adminUrl}/metrics`)).text();
      let total = 0;
      for (const line of text.split('\n')) {
        const match = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
        if (!match || (match[1] !== `cashflow_${name}` && match[1] !== name)) continue;
        const wanted = Object.entries(labels).every(([k, v]) => match[2]?.includes(`${k}="${v}"`));
        if (wanted) total += Number(match[3]);
      }
      return total;
    },
    close: () => ingress.close(),
  };
}
export type Ingress = Awaited<ReturnType<typeof startIngress>>;

/**
 * Topics of their own, the Plaid sandbox (our "Plaid", whose keys the ingress fetches), the
 * ingress pointed at both, and a reader of every topic the ingress writes to.
 */
export async function ingressWorld(
  ingressEnv: Record<string, string> = {},
  options: { brokers?: string[]; sandboxEnv?: Record<string, string> } = {},
) {
  const prefix = uniqueTopicPrefix();
  const brokers = options.brokers ?? KAFKA_BROKERS;
  const kafka = testKafka(prefix, brokers);
  await ensureTopics(kafka, { prefix, partitions: 3, replicationFactor: 1 });
  const sandbox: Sandbox = await startSandbox(options.sandboxEnv);
  const ingress = await startIngress({
    KAFKA_BROKERS: brokers.join(','),
    KAFKA_TOPIC_PREFIX: prefix,
    PLAID_SANDBOX_URL: sandbox.url,
    ...ingressEnv,
  });
  const topics = {
    reports: topicName('reportOutcomes', prefix),
    other: topicName('plaidWebhooks', prefix),
    deadLetter: topicName('deadLetter', prefix),
  };
  const reader = await collect(kafka, Object.values(topics));
  return {
    prefix,
    kafka,
    sandbox,
    ingress,
    topics,
    reader,
    /** Events decoded from the report and other-webhook topics, in arrival order. */
    events(): CashflowEvent[] {
      return reader.received
        .filter((r) => r.topic !== topics.deadLetter)
        .flatMap((r) => {
          const decoded = decodeEvent(r.message);
          return decoded.ok ? [decoded.value] : [];
        });
    },
    deadLetters(): Received[] {
      return reader.received.filter((r) => r.topic === topics.deadLetter);
    },
    async close() {
      await reader.stop();
      await ingress.close();
      await sandbox.close();
    },
  };
}
