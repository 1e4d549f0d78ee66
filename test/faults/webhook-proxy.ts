import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Request headers the ingress reads; the body goes through byte for byte (it is signed). */
const FORWARDED = ['content-type', 'plaid-verification'];

/**
 * An HTTP hop between the sandbox and the webhook ingress that can lose the ingress's answers:
 * while `losing`, a webhook the ingress stored (answered 200) is answered 503 to the sandbox, as
 * when the answer is lost on its way back, so Plaid sends it again and the ingress stores it
 * again: the same report delivered twice or more, deterministically.
 */
export async function webhookProxy(target: string) {
  let losing = false;
  let lost = 0;
  const server = await listen((req, body, res) => {
    forward(target, req, body)
      .then(async (upstream) => {
        if (losing && upstream.status === 200) {
          lost += 1;
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end('{"error":"the answer was lost"}');
          return;
        }
        await answer(res, upstream);
      })
      .catch(() => {
        res.writeHead(502);
        res.end();
      });
  });
  return {
    url: urlOf(server),
    /** Starts or stops losing the ingress's answers. */
    lose(on: boolean) {
      losing = on;
    },
    /** Answers lost so far: each a webhook the ingress stored that the sandbox sends again. */
    get lost() {
      return lost;
    },
    close: () => close(server),
  };
}

/**
 * A load balancer in front of several ingress processes, as a deployment has: webhooks go to
 * each in turn, and one that cannot be reached (killed, restarting) is passed over for the next.
 */
export async function webhookBalancer(targets: readonly string[]) {
  let next = 0;
  const server = await listen((req, body, res) => {
    const first = next++;
    const attempt = (tried: number): Promise<void> =>
      forward(targets[(first + tried) % targets.length]!, req, body).then(
        (upstream) => answer(res, upstream),
        () => {
          if (tried + 1 < targets.length) return attempt(tried + 1);
          res.writeHead(502);
          res.end();
          return undefined;
        },
      );
    attempt(0).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  return { url: urlOf(server), close: () => close(server) };
}

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

async function listen(handle: Handler): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function forward(target: string, req: IncomingMessage, body: Buffer): Promise<Response> {
  const headers = Object.fromEntries(
    FORWARDED.flatMap((name) => {
      const value = req.headers[name];
      return typeof value === 'string' ? [[name, value]] : [];
    }),
  );
  return fetch(target, { method: 'POST', headers, body });
}

async function answer(res: ServerResponse, upstream: Response): Promise<void> {
  const body = Buffer.from(await upstream.arrayBuffer());
  res.writeHead(upstream.status, {
    'content-type': upstream.headers.get('content-type') ?? 'application/json',
  });
  res.end(body);
}

const urlOf = (server: Server) =>
  `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/plaid`;

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

export type WebhookProxy = Awaited<ReturnType<typeof webhookProxy>>;
