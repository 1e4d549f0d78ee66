import { createServer, type Server } from 'node:http';
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
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const headers = Object.fromEntries(
        FORWARDED.flatMap((name) => {
          const value = req.headers[name];
          return typeof value === 'string' ? [[name, value]] : [];
        }),
      );
      fetch(target, { method: 'POST', headers, body: Buffer.concat(chunks) })
        .then(async (upstream) => {
          const body = Buffer.from(await upstream.arrayBuffer());
          if (losing && upstream.status === 200) {
            lost += 1;
            res.writeHead(503, { 'content-type': 'application/json' });
            res.end('{"error":"the answer was lost"}');
            return;
          }
          res.writeHead(upstream.status, {
            'content-type': upstream.headers.get('content-type') ?? 'application/json',
          });
          res.end(body);
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/plaid`,
    /** Starts or stops losing the ingress's answers. */
    lose(on: boolean) {
      losing = on;
    },
    /** Answers lost so far: each a webhook the ingress stored that the sandbox sends again. */
    get lost() {
      return lost;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export type WebhookProxy = Awaited<ReturnType<typeof webhookProxy>>;
