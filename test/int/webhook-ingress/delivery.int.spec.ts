import { DLQ_HEADERS } from '@cashflow/contracts';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { waitFor } from '../../support/wait-for';
import {
  ingressWorld,
  plaidSigned,
  startIngress,
  webhookBody,
} from '../../support/webhook-ingress';

type World = Awaited<ReturnType<typeof ingressWorld>>;

describe('webhook ingress: what verified webhooks become', () => {
  let world: World;

  beforeAll(async () => {
    // Plaid's real 10 s answer window rather than the scaled one (10 ms at the tests' time
    // scale), which a loaded machine overruns: the sandbox then retries, as Plaid would.
    world = await ingressWorld({}, { sandboxEnv: { PLAID_SANDBOX_WEBHOOK_TIMEOUT_MS: '10000' } });
  });
  afterAll(async () => {
    await world.close();
  });

  const forItem = (itemId: string) => world.events().filter((e) => e.data.item_id === itemId);
  const send = async (body: Buffer, jwt?: string) =>
    world.ingress.post(body, {
      'plaid-verification': jwt ?? (await plaidSigned(world.sandbox, body)),
    });

  it('publishes a replayed delivery once and answers every copy 200', async () => {
    const itemId = `item-${randomUUID()}`;
    const body = webhookBody(itemId);
    const jwt = await plaidSigned(world.sandbox, body);

    const concurrent = await Promise.all([1, 2, 3, 4, 5].map(() => send(body, jwt)));
    const later = await send(body, jwt);

    expect([...concurrent, later].map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const ids = new Set([...concurrent, later].map((a) => a.body.event_id));
    expect(ids.size).toBe(1);
    // A second, genuine delivery with byte-identical body (another refresh) is its own event:
    // deliveries are told apart by their signature, never by their body.
    expect((await send(body)).status).toBe(200);
    await world.reader.toEnd();
    expect(forItem(itemId)).toHaveLength(2);
    expect(await world.ingress.metric('webhook_requests_total', { outcome: 'duplicate' })).toBe(5);
  });

  it('publishes ReportFailed with the PlaidError when the webhook carries one', async () => {
    const itemId = `item-${randomUUID()}`;
    const error = {
      error_type: 'ITEM_ERROR',
      error_code: 'PRODUCTS_NOT_SUPPORTED',
      error_message: 'the product is not supported',
      display_message: null,
      request_id: 'req-1',
      status: 400,
      something_new: 'kept',
    };
    expect((await send(webhookBody(itemId, { error }))).status).toBe(200);
    await world.reader.until(1, (r) => r.message.key?.toString() === itemId);
    const [event] = forItem(itemId);
    expect(event?.type).toBe('ReportFailed');
    expect(event?.data).toMatchObject({ error });
  });

  it('publishes other webhook codes as PlaidWebhookReceived, unknown webhook_type included', async () => {
    const itemId = `item-${randomUUID()}`;
    const body = webhookBody(itemId, {
      webhook_type: 'SOMETHING_NEW',
      webhook_code: 'PENDING_EXPIRATION',
      consent_expiration_time: '2027-01-01T00:00:00Z',
    });
    expect((await send(body)).status).toBe(200);
    const [record] = await world.reader.until(1, (r) => r.message.key?.toString() === itemId);
    expect(record?.topic).toBe(world.topics.other);
    expect(forItem(itemId)[0]).toMatchObject({
      type: 'PlaidWebhookReceived',
      data: { webhook_type: 'SOMETHING_NEW', webhook_code: 'PENDING_EXPIRATION' },
    });
  });

  it('answers 400 to signed JSON it cannot use, and dead-letters it byte for byte', async () => {
    const marker = randomUUID();
    const bad = Buffer.from(`{"webhook_code": "CASHFLOW_REPORT_READY", "marker": "${marker}", `);
    const answer = await send(bad);
    expect(answer.status).toBe(400);
    expect(answer.body.reason).toMatch(/not JSON/);

    const noItem = Buffer.from(JSON.stringify({ webhook_code: 'CASHFLOW_REPORT_READY', marker }));
    expect((await send(noItem)).status).toBe(400);

    const records = await world.reader.until(2, (r) =>
      Boolean(r.message.value?.toString().includes(marker) && r.topic === world.topics.deadLetter),
    );
    const headers = (i: number) =>
      Object.fromEntries(
        Object.entries(records[i]!.message.headers ?? {}).map(([k, v]) => [k, String(v)]),
      );
    expect(records[0]!.message.value).toEqual(bad);
    expect(headers(0)).toMatchObject({
      [DLQ_HEADERS.errorCode]: 'INVALID_JSON',
      [DLQ_HEADERS.sourceTopic]: 'http:POST /webhooks/plaid',
      [DLQ_HEADERS.consumer]: 'webhook-ingress',
    });
    expect(headers(1)).toMatchObject({
      [DLQ_HEADERS.errorCode]: 'SCHEMA_VIOLATION',
      [DLQ_HEADERS.field]: 'item_id',
    });
    expect(JSON.stringify(headers(0))).not.toMatch(/eyJ/); // no JWT kept
  });

  it('records a verified webhook no event can carry (no item_id) and answers 200', async () => {
    const marker = randomUUID();
    const body = Buffer.from(
      JSON.stringify({ webhook_type: 'LINK', webhook_code: 'SESSION_FINISHED', marker }),
    );
    const answer = await send(body);
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe('recorded');
    const [record] = await world.reader.until(1, (r) =>
      Boolean(r.message.value?.toString().includes(marker)),
    );
    expect(record?.topic).toBe(world.topics.deadLetter);
    expect(String(record?.message.headers?.[DLQ_HEADERS.errorCode])).toBe('UNROUTABLE_WEBHOOK');
  });

  describe('limits', () => {
    it('answers 413 to a body over the cap, declared or streamed', async () => {
      const big = Buffer.alloc(world.ingress.config.webhook.maxBodyBytes + 1, 0x20);
      expect((await world.ingress.post(big)).status).toBe(413);

      const streamed = await request(world.ingress.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // No Content-Length: the cap is enforced while reading.
        body: Readable.from(Array.from({ length: 80 }, () => Buffer.alloc(1024, 0x20))),
      });
      expect(streamed.statusCode).toBe(413);
      await streamed.body.dump();
    });

    it('answers 415 to anything but JSON and 405 to anything but POST', async () => {
      const body = webhookBody(`item-${randomUUID()}`);
      const jwt = await plaidSigned(world.sandbox, body);
      const text = await world.ingress.post(body, {
        'content-type': 'text/plain',
        'plaid-verification': jwt,
      });
      expect(text.status).toBe(415);
      const get = await fetch(world.ingress.url);
      expect(get.status).toBe(405);
      expect(get.headers.get('allow')).toBe('POST');
    });

    it('serves health and metrics only on the admin port', async () => {
      const base = new URL(world.ingress.url).origin;
      expect((await fetch(`${base}/health/ready`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`)).status).toBe(404);
      expect((await fetch(`${world.ingress.adminUrl}/health/ready`)).status).toBe(200);
      expect((await fetch(`${world.ingress.adminUrl}/metrics`)).status).toBe(200);
    });

    it('answers 408 and closes a request whose body never finishes', async () => {
      const slow = await startIngressWithTimeout(world, 1000);
      try {
        const started = Date.now();
        const answer = await request(slow.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': '100' },
          body: Readable.from(
            (async function* () {
              yield Buffer.from('{');
              await new Promise((resolve) => setTimeout(resolve, 5000));
            })(),
          ),
        }).catch((error: Error) => error);
        const status = answer instanceof Error ? 'closed' : answer.statusCode;
        expect([408, 'closed']).toContain(status);
        expect(Date.now() - started).toBeLessThan(4000);
      } finally {
        await slow.close();
      }
    });
  });

  it("delivers the sandbox's own signed webhooks end to end", async () => {
    const item = await world.sandbox.createItem({ webhook: world.ingress.url });
    const fired = await world.sandbox.admin('POST', `/items/${item.item_id}/fire_webhook`, {});
    expect(fired.status).toBeLessThan(300);
    const delivery = await waitFor('the sandbox to see a 200', async () => {
      const { body } = await world.sandbox.admin('GET', `/webhooks?item_id=${item.item_id}`);
      const first = body.deliveries[0] as SandboxDelivery | undefined;
      return first?.state === 'delivered' ? first : undefined;
    });
    await world.reader.toEnd();

    // What is promised, whatever the timing: the attempt answered 200 was stored; everything
    // stored came from an attempt the sandbox made (a retry after an attempt the sandbox gave up
    // on is a new signed delivery, and may be stored too); no attempt was stored twice.
    const reports = forItem(item.item_id);
    expect(reports.map((e) => e.type)).toEqual(reports.map(() => 'ReportReady'));
    const stored = reports.map((e) => (e.data as { delivery_id: string }).delivery_id);
    const attempts = delivery.attempts.map((a) => a.jwt_sha256);
    const answered = delivery.attempts[delivery.attempts.length - 1]!;
    expect(answered.status).toBe(200);
    expect(stored).toContain(answered.jwt_sha256);
    expect(stored.filter((id) => !attempts.includes(id))).toEqual([]);
    expect(new Set(stored).size).toBe(stored.length);
  });
});

interface SandboxDelivery {
  readonly state: string;
  readonly attempts: { readonly status: number | null; readonly jwt_sha256: string | null }[];
}

function startIngressWithTimeout(world: World, ms: number) {
  return startIngress({
    KAFKA_TOPIC_PREFIX: world.prefix,
    PLAID_SANDBOX_URL: world.sandbox.url,
    WEBHOOK_REQUEST_TIMEOUT_MS: String(ms),
  });
}
