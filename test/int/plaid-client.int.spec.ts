import { PlaidClient } from '@cashflow/plaid-client';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../support/ports';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

/** A scripted HTTP server on loopback standing in for Plaid's wire behaviour. */
async function plaidDouble(handler: Handler): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('PlaidClient over real HTTP', () => {
  const servers: Server[] = [];
  const clients: PlaidClient[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    servers.forEach((s) => s.closeAllConnections());
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  async function setup(handler: Handler, timeouts: { headersTimeoutMs?: number } = {}) {
    const { url, server } = await plaidDouble(handler);
    servers.push(server);
    const client = new PlaidClient({
      baseUrl: url,
      clientId: 'client-id',
      secret: 'not-a-real-secret',
      ...timeouts,
    });
    clients.push(client);
    return client;
  }

  it('sends credentials in headers, not in the body, and returns the request id', async () => {
    let seen: { headers: IncomingMessage['headers']; body: Record<string, unknown> } | undefined;
    const client = await setup((req, body, res) => {
      seen = { headers: req.headers, body: JSON.parse(body) as Record<string, unknown> };
      json(res, 200, { request_id: 'req-1' });
    });
    const result = await client.refreshCashflowReport('access-sandbox-fake', 90);
    expect(result).toEqual({ ok: true, value: { request_id: 'req-1' } });
    expect(seen?.headers['plaid-client-id']).toBe('client-id');
    expect(seen?.headers['plaid-secret']).toBe('not-a-real-secret');
    expect(seen?.headers['plaid-version']).toBe('2020-09-14');
    expect(seen?.body).toEqual({ access_token: 'access-sandbox-fake', days_requested: 90 });
  });

  it("returns Plaid's error object with the HTTP status", async () => {
    const error = {
      error_type: 'ITEM_ERROR',
      error_code: 'ITEM_LOGIN_REQUIRED',
      error_message: 'the login details of this item have changed',
      display_message: null,
      request_id: 'req-2',
    };
    const client = await setup((_req, _body, res) => json(res, 400, error));
    expect(await client.refreshCashflowReport('access-sandbox-fake', 365)).toEqual({
      ok: false,
      error: { kind: 'plaid', httpStatus: 400, error },
    });
  });

  it('reports a non-Plaid error body as an invalid response', async () => {
    const client = await setup((_req, _body, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>bad gateway</html>');
    });
    expect(await client.refreshCashflowReport('t', 1)).toMatchObject({
      ok: false,
      error: { kind: 'invalid_response', httpStatus: 502 },
    });
  });

  it('turns no answer within the headers time-out into a timeout error', async () => {
    const client = await setup(() => undefined, { headersTimeoutMs: 300 });
    expect(await client.refreshCashflowReport('t', 1)).toMatchObject({
      ok: false,
      error: { kind: 'timeout', phase: 'headers' },
    });
  });

  it('turns a refused connection into a network error', async () => {
    const client = new PlaidClient({
      baseUrl: `http://127.0.0.1:${await freePort()}`,
      clientId: 'c',
      secret: 's',
    });
    clients.push(client);
    expect(await client.refreshCashflowReport('t', 1)).toMatchObject({
      ok: false,
      error: { kind: 'network', code: 'ECONNREFUSED' },
    });
  });
});
