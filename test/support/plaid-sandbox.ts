import { LOCAL_SANDBOX_CREDENTIALS } from '@cashflow/config';
import type { INestApplication } from '@nestjs/common';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadPlaidSandboxConfig } from '../../apps/plaid-sandbox/src/config';
import type { ItemInput } from '../../apps/plaid-sandbox/src/items/item';
import { startPlaidSandbox } from '../../apps/plaid-sandbox/src/start-plaid-sandbox';
import { quietLogger } from './kafka';
import { freePort } from './ports';

export const CREDENTIALS = {
  client_id: LOCAL_SANDBOX_CREDENTIALS.clientId,
  secret: LOCAL_SANDBOX_CREDENTIALS.secret,
};

export interface JsonResponse {
  readonly status: number;
  readonly headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any;
}

async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text ? JSON.parse(text) : undefined,
  };
}

/** Speaks to a Plaid sandbox at `url` (in this process or its own) over HTTP. */
export function sandboxClient(url: string) {
  return {
    url,
    /** A Plaid endpoint with the sandbox's credentials in the body. */
    plaid: (path: string, body: Record<string, unknown>) =>
      postJson(`${url}${path}`, { ...CREDENTIALS, ...body }),
    /** A Plaid endpoint exactly as given: body and headers. */
    raw: (path: string, body: unknown, headers?: Record<string, string>) =>
      postJson(`${url}${path}`, body, headers),
    async createItem(input: ItemInput = {}) {
      const response = await postJson(`${url}/sandbox/items`, input);
      if (response.status !== 201)
        throw new Error(`create item: ${response.status} ${JSON.stringify(response.body)}`);
      return response.body.item as {
        item_id: string;
        access_token: string;
        accounts: { account_id: string }[];
      };
    },
    admin: async (method: string, path: string, body?: unknown): Promise<JsonResponse> => {
      const response = await fetch(`${url}/sandbox${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return {
        status: response.status,
        headers: response.headers,
        body: text ? JSON.parse(text) : undefined,
      };
    },
  };
}

/**
 * The Plaid sandbox app running in this process on a loopback port, spoken to over real HTTP.
 * Delays are scaled down and the latency is zero unless the test says otherwise.
 */
export async function startSandbox(env: Record<string, string> = {}) {
  const port = await freePort();
  const config = loadPlaidSandboxConfig({
    PLAID_SANDBOX_PORT: String(port),
    PLAID_SANDBOX_TIME_SCALE: '0.001',
    PLAID_SANDBOX_REFRESH_LATENCY: 'fixed:0',
    PLAID_SANDBOX_EXTRACTION_DELAY_MS: '0',
    // Plaid's 10 s answer time-out scaled by 0.001 would be 10 ms: a loaded machine's receiver
    // (an ingress storing to Kafka) often takes longer, and a retry is a second delivery. Tests
    // of the time-out itself set their own.
    PLAID_SANDBOX_WEBHOOK_TIMEOUT_MS: '5000',
    LOG_LEVEL: 'error',
    ...env,
  });
  const app: INestApplication = await startPlaidSandbox(config, quietLogger);
  return {
    ...sandboxClient(`http://127.0.0.1:${port}`),
    config,
    close: () => app.close(),
  };
}
export type Sandbox = Awaited<ReturnType<typeof startSandbox>>;

export interface ReceivedWebhook {
  readonly headers: IncomingHttpHeaders;
  readonly raw: Buffer;
  readonly at: number;
}

type Reply = { status: number; headers?: Record<string, string> } | 'hang';

/**
 * An HTTP server on loopback that records every webhook it receives and answers as `reply`
 * says for the n-th delivery (1-based).
 */
export async function webhookReceiver(reply: (n: number) => Reply = () => ({ status: 200 })) {
  const received: ReceivedWebhook[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, raw: Buffer.concat(chunks), at: Date.now() });
      const answer = reply(received.length);
      if (answer === 'hang') return;
      res.writeHead(answer.status, answer.headers);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/plaid`,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
