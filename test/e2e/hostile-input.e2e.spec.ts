/**
 * Hostile input against the running system, each app its own process: Kafka records larger than
 * anything the contracts allow, HTTP bodies over the cap, slow-loris clients, and a flood of
 * webhooks signed with made-up key ids. Each is refused with a reason, costs bounded memory, and
 * leaves the system answering genuine traffic. (RSS figures are printed; the bound asserted is a
 * guard against unbounded growth, not a performance target.)
 */
import { createEvent, encodeEvent, topicName } from '@cashflow/contracts';
import { SignJWT, generateKeyPair } from 'jose';
import { ConfigResourceTypes, type Producer } from 'kafkajs';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { collect, testKafka } from '../support/kafka';
import { startSystem, type System } from '../support/system';
import { waitFor } from '../support/wait-for';

/** Resident set size of a process, in MiB. */
function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(match?.[1] ?? 0) / 1024);
}

/** Generous: a process that held every hostile byte it was sent would pass this many times. */
const RSS_GUARD_MB = 600;

describe('hostile input against the whole system', () => {
  let system: System;
  const rss: Record<string, Record<string, number>> = {};
  const sample = (when: string) => {
    rss[when] = Object.fromEntries(
      ['refresh-worker', 'webhook-ingress', 'projector'].map((name) => [
        name,
        rssMb(system.app(name).child.pid!),
      ]),
    );
    return rss[when];
  };

  beforeAll(async () => {
    system = await startSystem();
    sample('start');
  });
  afterAll(async () => {
    console.log(`RSS (MiB) by moment and app:\n${JSON.stringify(rss, null, 2)}`);
    await system.stop();
  });

  /** The sum of an ingress metric's samples whose labels mention `label`. */
  async function ingressCount(name: string, label = ''): Promise<number> {
    const text = await (await fetch(`${system.ingressAdminUrl}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) && l.includes(label))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  }

  /** A genuine refresh still goes all the way to ready. */
  async function genuineRefreshWorks() {
    const item = await system.item();
    const answer = await system.cli(['refresh', item.item_id, '--wait', '--timeout', '60']);
    expect(answer.code).toBe(0);
    expect(system.app('refresh-worker').child.exitCode).toBeNull();
    expect(system.app('webhook-ingress').child.exitCode).toBeNull();
    expect(system.app('projector').child.exitCode).toBeNull();
  }

  it('dead-letters Kafka records larger than any event may be, and malformed ones, with the reason; the consumers go on', async () => {
    const kafka = testKafka(system.prefix);
    const requested = topicName('refreshRequested', system.prefix);
    const deadLetter = topicName('deadLetter', system.prefix);
    // The broker's default limit (1 MiB) is the contracts' limit too; a topic configured to take
    // more is how a record over it could arrive.
    const admin = kafka.admin();
    await admin.connect();
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: requested,
          configEntries: [{ name: 'max.message.bytes', value: String(4 * 1024 * 1024) }],
        },
      ],
    });
    await admin.disconnect();

    const valid = encodeEvent(
      createEvent(
        'RefreshRequested',
        { item_id: 'item-hostile', days_requested: 30, requested_by: 'hostile' },
        { id: randomUUID(), source: 'urn:test:hostile', time: new Date().toISOString() },
      ),
    );
    const huge = Buffer.alloc(2 * 1024 * 1024, 'x');
    const longId = Buffer.from(
      JSON.stringify({ item_id: 'i'.repeat(500_000), days_requested: 30, requested_by: 'x' }),
    );
    const deep = Buffer.from(`${'['.repeat(300_000)}${']'.repeat(300_000)}`);
    const producer: Producer = kafka.producer();
    await producer.connect();
    const copies = 15;
    for (let i = 0; i < copies; i += 1) {
      await producer.send({
        topic: requested,
        messages: [
          { key: 'item-hostile', value: huge, headers: valid.headers },
          { key: 'item-hostile', value: longId, headers: valid.headers },
          { key: 'item-hostile', value: deep, headers: valid.headers },
        ],
      });
    }
    await producer.disconnect();

    // Two consumers read the requested topic (the worker and the projector): each dead-letters.
    const dlq = await collect(kafka, [deadLetter]);
    try {
      await waitFor(
        'every hostile record dead-lettered by both consumers',
        () => (dlq.received.length >= copies * 3 * 2 ? true : undefined),
        90_000,
        500,
      );
      const headers = dlq.received.map(({ message }) =>
        Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])),
      );
      const byCode = (code: string) => headers.filter((h) => h.dlq_error_code === code);
      expect(byCode('TOO_LARGE')).toHaveLength(copies * 2);
      const tooLarge = dlq.received.find(
        ({ message }) => String(message.headers?.dlq_error_code) === 'TOO_LARGE',
      )!.message;
      expect(String(tooLarge.headers?.dlq_reason)).toBe(
        `value: ${huge.length} bytes exceeds ${1024 * 1024}`,
      );
      // Only the start is copied, with the length and digest of the whole.
      expect(tooLarge.value?.length).toBe(64 * 1024);
      expect(String(tooLarge.headers?.dlq_value_truncated)).toBe(String(huge.length));
      expect(String(tooLarge.headers?.dlq_value_sha256)).toBe(
        createHash('sha256').update(huge).digest('hex'),
      );
      const longIds = byCode('SCHEMA_VIOLATION').filter((h) => h.dlq_field === 'data.item_id');
      expect(longIds).toHaveLength(copies * 2);
      // The deeply nested one too: each record has its reason, none is skipped or repeated.
      expect(headers).toHaveLength(copies * 3 * 2);
      expect(headers.every((h) => h.dlq_reason && h.dlq_error_code && h.dlq_field)).toBe(true);
      expect(new Set(headers.map((h) => h.dlq_consumer)).size).toBe(2);
    } finally {
      await dlq.stop();
    }

    await genuineRefreshWorks();
    const after = sample('after 15 x (2 MiB + 0.5 MiB + 0.6 MiB) records');
    expect(after['refresh-worker']).toBeLessThan(RSS_GUARD_MB);
    expect(after.projector).toBeLessThan(RSS_GUARD_MB);
  });

  it('refuses bodies over the cap with 413 and hangs up, whatever length they declare', async () => {
    const url = new URL(system.ingressUrl);
    const tooLargeBefore = await ingressCount('webhook_requests_total', 'too_large');
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        rawRequest(url.port, (socket) => {
          socket.write(
            'POST /webhooks/plaid HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
              `Content-Length: ${i % 2 === 0 ? 1024 ** 3 : 5 * 1024 * 1024}\r\n\r\n`,
          );
          // Stream 5 MiB in 64 KiB pieces unless the server has hung up.
          const chunk = Buffer.alloc(64 * 1024, 'a');
          let sent = 0;
          const pump = () => {
            while (sent < 5 * 1024 * 1024 && !socket.destroyed) {
              sent += chunk.length;
              if (!socket.write(chunk)) return void socket.once('drain', pump);
            }
          };
          pump();
        }),
      ),
    );
    // The server answers 413 and hangs up; a client still writing may see the reset before the
    // answer, so the ingress's own count is the measure.
    expect(answers.every((a) => a === '' || a.startsWith('HTTP/1.1 413'))).toBe(true);
    expect((await ingressCount('webhook_requests_total', 'too_large')) - tooLargeBefore).toBe(50);
    await genuineRefreshWorks();
    expect(sample('after 50 oversized bodies')['webhook-ingress']).toBeLessThan(RSS_GUARD_MB);
  });

  it('drops slow-loris clients after the request time-out while genuine webhooks get through', async () => {
    const url = new URL(system.ingressUrl);
    const sockets: Socket[] = [];
    let closedByServer = 0;
    for (let i = 0; i < 300; i += 1) {
      const socket = connect(Number(url.port), '127.0.0.1');
      socket.on('error', () => undefined);
      socket.on('close', () => (closedByServer += 1));
      socket.write('POST /webhooks/plaid HTTP/1.1\r\nHost: x\r\n');
      sockets.push(socket);
    }
    // One more header byte every second, never finishing the headers.
    const drip = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write('X');
    }, 1000);
    try {
      await genuineRefreshWorks();
      await waitFor(
        'the ingress to close every slow-loris connection',
        () => (closedByServer === sockets.length ? true : undefined),
        30_000,
        250,
      );
    } finally {
      clearInterval(drip);
      for (const s of sockets) s.destroy();
    }
    expect(sample('after 300 slow-loris clients')['webhook-ingress']).toBeLessThan(RSS_GUARD_MB);
  });

  it('answers a flood of made-up key ids without asking Plaid more than its budget allows', async () => {
    const fetches = () => ingressCount('webhook_key_fetches_total');
    const before = await fetches();
    const { privateKey } = await generateKeyPair('ES256');
    const body = JSON.stringify({
      webhook_type: 'CASHFLOW_REPORT',
      webhook_code: 'CASHFLOW_REPORT_READY',
      item_id: 'item-forged',
      error: null,
      environment: 'sandbox',
    });
    const sha = createHash('sha256').update(body).digest('hex');
    const statuses = new Map<number, number>();
    const flood = 2000;
    for (let batch = 0; batch < flood / 100; batch += 1) {
      await Promise.all(
        Array.from({ length: 100 }, async () => {
          const jwt = await new SignJWT({ request_body_sha256: sha })
            .setProtectedHeader({ alg: 'ES256', kid: randomUUID(), typ: 'JWT' })
            .setIssuedAt()
            .sign(privateKey);
          const response = await fetch(system.webhookUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'plaid-verification': jwt },
            body,
          });
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        }),
      );
    }
    // Unknown to Plaid (401), or not asked about once the fetch budget is spent (503): never 200.
    expect([...statuses.keys()].sort()).toEqual(expect.arrayContaining([401]));
    expect([...statuses.keys()].every((s) => s === 401 || s === 503)).toBe(true);
    expect((await fetches()) - before).toBeLessThanOrEqual(30);
    // The sandbox's genuine webhooks are signed by a key the ingress already holds.
    await genuineRefreshWorks();
    expect(sample(`after ${flood} made-up kids`)['webhook-ingress']).toBeLessThan(RSS_GUARD_MB);
  });
});

/** Opens a connection, lets `send` write to it, and resolves with what came back. */
function rawRequest(port: string, send: (socket: Socket) => void): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.on('error', () => undefined);
    const giveUp = setTimeout(() => socket.destroy(), 20_000);
    socket.on('close', () => {
      clearTimeout(giveUp);
      resolve(answer);
    });
    socket.on('connect', () => send(socket));
  });
}
