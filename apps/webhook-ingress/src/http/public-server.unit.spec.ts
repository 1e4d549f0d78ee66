import { loggerInto } from '../../../../test/support/logs';
import { request as httpRequest, Agent } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { loadWebhookIngressConfig } from '../config';
import type { WebhookResponse } from '../webhooks/webhook.service';
import { freePort } from '../../../../test/support/ports';
import { createPublicServer, type PublicServer } from './public-server';

/**
 * The public server over loopback, with a fake WebhookService: what reaches the service, what
 * is refused before it, and how the server stops. (The real pipeline behind it is exercised by
 * test/int/webhook-ingress.)
 */
describe('public webhook server', () => {
  const MAX_BODY = 1024;
  let server: PublicServer;
  let url: string;
  let received: { body: Buffer; token: string | undefined }[];
  let answerWith: () => Promise<WebhookResponse>;
  let counted: string[];
  let logged: string[];

  /** A server on a free port; `env` adds to (or overrides) the test's variables. */
  const startServer = async (env: Record<string, string> = {}) => {
    const port = await freePort();
    const config = loadWebhookIngressConfig({
      KAFKA_BROKERS: '127.0.0.1:9',
      PLAID_ENV: 'local',
      BIND_ADDRESS: '127.0.0.1',
      WEBHOOK_INGRESS_PORT: String(port),
      WEBHOOK_INGRESS_ADMIN_PORT: String(await freePort()),
      WEBHOOK_MAX_BODY_BYTES: String(MAX_BODY),
      ...env,
    });
    const started = createPublicServer(
      config,
      {
        receive: (body, token) => {
          received.push({ body, token });
          return answerWith();
        },
      },
      { request: (outcome) => void counted.push(outcome) },
      loggerInto(logged, 'test', 'error'),
    );
    await started.listen();
    return { server: started, url: `http://127.0.0.1:${port}${config.webhook.path}` };
  };

  beforeEach(async () => {
    received = [];
    counted = [];
    logged = [];
    answerWith = () => Promise.resolve({ status: 200, body: { ok: true }, outcome: 'accepted' });
    ({ server, url } = await startServer());
  });
  afterEach(() => server.close());

  const post = (body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });

  it('hands the exact bytes and the Plaid-Verification header to the service and sends its answer', async () => {
    const body = '{ "webhook_code":  "CASHFLOW_REPORT_READY" }';
    answerWith = () =>
      Promise.resolve({
        status: 503,
        body: { error: 'unavailable' },
        headers: { 'retry-after': '30' },
        outcome: 'unavailable',
      });
    const response = await post(body, {
      'content-type': 'application/json; charset=utf-8',
      'plaid-verification': 'a.b.c',
    });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('30');
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await response.json()).toEqual({ error: 'unavailable' });
    expect(received).toHaveLength(1);
    expect(received[0]!.body.toString()).toBe(body);
    expect(received[0]!.token).toBe('a.b.c');
  });

  it('refuses other paths, methods and content types before reading a body, counting each refusal', async () => {
    const other = await fetch(url.replace(/\/[^/]*$/, '/other'), { method: 'POST', body: '{}' });
    expect(other.status).toBe(404);
    expect(await other.json()).toEqual({ error: 'not_found' });
    const get = await fetch(url);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const text = await post('{}', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(await text.json()).toEqual({
      error: 'unsupported_media_type',
      reason: 'content-type must be application/json',
    });
    expect(received).toHaveLength(0);
    expect(counted).toEqual(['not_found', 'method_not_allowed', 'unsupported_media_type']);
  });

  it('sends 100 Continue only to a request that passed the checks, and the refusal instead to one that did not', async () => {
    const headers = (length: number, path = new URL(url).pathname) =>
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`;

    const tooLarge = rawConnection(url);
    tooLarge.socket.write(headers(MAX_BODY + 1));
    await tooLarge.closed;
    expect(tooLarge.text()).toMatch(/^HTTP\/1\.1 413 /);
    expect(tooLarge.text()).not.toContain('100 Continue');

    const elsewhere = rawConnection(url);
    elsewhere.socket.write(headers(2, '/other'));
    await elsewhere.closed;
    expect(elsewhere.text()).toMatch(/^HTTP\/1\.1 404 /);

    const fine = rawConnection(url);
    fine.socket.write(headers(2));
    await fine.until(/\r\n\r\n/);
    expect(fine.text()).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    expect(received).toHaveLength(0);
    fine.socket.end('{}');
    await fine.until(/\{"ok":true\}/);
    expect(fine.text()).toContain('HTTP/1.1 200 OK');
    expect(received.map((r) => r.body.toString())).toEqual(['{}']);
    expect(counted).toEqual(['too_large', 'not_found']);
  });

  it("counts node's own answers: 400 to a request it cannot parse, 408 to one not received in time", async () => {
    const garbled = rawConnection(url);
    garbled.socket.write('NOT HTTP AT ALL\r\n\r\n');
    await garbled.closed;
    expect(garbled.text()).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);

    const slow = await startServer({ WEBHOOK_REQUEST_TIMEOUT_MS: '500' });
    try {
      const stalled = rawConnection(slow.url);
      // Headers and the first byte of a 10-byte body; the rest never comes.
      stalled.socket.write(
        `POST ${new URL(slow.url).pathname} HTTP/1.1\r\nHost: x\r\n` +
          'Content-Type: application/json\r\nContent-Length: 10\r\n\r\n{',
      );
      await stalled.closed;
      expect(stalled.text()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    } finally {
      await slow.server.close();
    }
    expect(received).toHaveLength(0);
    expect(counted).toEqual(['bad_request', 'timeout']);
  });

  it('answers 413 and hangs up on a body over the cap, declared or streamed', async () => {
    const declared = await post(Buffer.alloc(MAX_BODY + 1, 0x20));
    expect(declared.status).toBe(413);
    expect(declared.headers.get('connection')).toBe('close');

    const streamed = await new Promise<{ status?: number; connection?: string }>(
      (resolve, reject) => {
        const req = httpRequest(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
        });
        req.on('response', (res) => {
          res.resume();
          resolve({ status: res.statusCode, connection: res.headers.connection });
        });
        req.on('error', reject);
        // No Content-Length: the cap is enforced while reading.
        Readable.from(Array.from({ length: 4 }, () => Buffer.alloc(512, 0x20))).pipe(req);
      },
    );
    expect(streamed).toEqual({ status: 413, connection: 'close' });
    expect(received).toHaveLength(0);
    expect(counted).toEqual(['too_large', 'too_large']);
  });

  it('answers 500 without detail, and logs, when the service fails', async () => {
    answerWith = () => Promise.reject(new Error('boom'));
    const response = await post('{}');
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: 'internal' });
    expect(logged.join('')).toContain('webhook request failed');
  });

  it('stops by answering the webhooks in hand and refusing new ones with 503', async () => {
    const held: (() => void)[] = [];
    answerWith = () =>
      new Promise((resolve) => {
        held.push(() => resolve({ status: 200, body: { ok: true }, outcome: 'accepted' }));
      });
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    const send = () =>
      new Promise<{ status?: number; body: string } | 'refused'>((resolve) => {
        const req = httpRequest(url, {
          agent,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
        });
        req.on('response', (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        req.on('error', () => resolve('refused'));
        req.end('{}');
      });
    try {
      // Two webhooks in hand, on two kept-alive connections.
      const first = send();
      const second = send();
      await waitUntil(() => held.length === 2);
      let closed = false;
      const closing = server.close().then(() => (closed = true));
      held[0]!();
      expect(await first).toEqual({ status: 200, body: '{"ok":true}' });
      // The first connection is free again: a webhook sent on it now is refused, not taken.
      const late = await send();
      expect(late).toMatchObject({ status: 503 });
      expect(closed).toBe(false);
      held[1]!();
      expect(await second).toEqual({ status: 200, body: '{"ok":true}' });
      await closing;
      expect(received).toHaveLength(2);
    } finally {
      agent.destroy();
    }
  });

  it('stops without waiting for a client still sending its body, and answers every close', async () => {
    let started = false;
    server.server.once('request', () => (started = true));
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // Headers and the first byte of a 10-byte body; the rest never comes.
    socket.write(
      `POST ${new URL(url).pathname} HTTP/1.1\r\nHost: x\r\n` +
        'Content-Type: application/json\r\nContent-Length: 10\r\n\r\n{',
    );
    await waitUntil(() => started);
    const first = server.close();
    const second = server.close();
    await Promise.all([first, second]);
    await ended;
    expect(received).toHaveLength(0);
  });

  it('sends every pipelined answer before it stops, whichever was ready first', async () => {
    const held: (() => void)[] = [];
    answerWith = () =>
      new Promise((resolve) => {
        const n = held.length + 1;
        held.push(() => resolve({ status: 200, body: { n }, outcome: 'accepted' }));
      });
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const one = `POST ${new URL(url).pathname} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`;
    socket.write(one + one);
    await waitUntil(() => held.length === 2);
    const closing = server.close();
    held[1]!();
    await new Promise((resolve) => setTimeout(resolve, 50));
    held[0]!();
    await closing;
    await ended;
    expect(text.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    expect(text).toContain('{"n":1}');
    expect(text).toContain('{"n":2}');
  });
});

/** A raw connection to the server of `url`: what it has received, and waits on it. */
function rawConnection(url: string) {
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  socket.on('error', () => undefined);
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    closed,
    text: () => text,
    /** Resolves once what was received matches `pattern`; fails if the connection closes first. */
    until: (pattern: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!pattern.test(text)) return;
          stop();
          resolve();
        };
        const onClose = () => {
          stop();
          if (pattern.test(text)) resolve();
          else reject(new Error(`connection closed with ${JSON.stringify(text)}`));
        };
        const stop = () => {
          socket.off('data', check);
          socket.off('close', onClose);
        };
        socket.on('data', check);
        socket.on('close', onClose);
        check();
      }),
  };
}

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!condition()) throw new Error('condition not met');
}
