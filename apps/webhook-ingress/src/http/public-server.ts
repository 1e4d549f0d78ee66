import type { Logger } from '@cashflow/observability';
import {
  STATUS_CODES,
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import getRawBody from 'raw-body';
import type { WebhookIngressConfig } from '../config';
import type { WebhookMetrics } from '../webhooks/webhook-metrics';
import type { WebhookService } from '../webhooks/webhook.service';

const JSON_TYPE = /^application\/json\s*(;|$)/i;

export type Refusal = 'method_not_allowed' | 'unsupported_media_type' | 'too_large';

const STATUS: Record<Refusal, number> = {
  method_not_allowed: 405,
  unsupported_media_type: 415,
  too_large: 413,
};

/** Seconds in the Retry-After of a webhook refused because the ingress is stopping. */
const STOPPING_RETRY_AFTER_S = 5;

export interface PublicServer {
  /** Starts taking webhooks on the configured host and port. */
  listen(): Promise<void>;
  /**
   * Stops taking webhooks: the listening socket closes, idle connections close, a request that
   * arrives meanwhile on a kept-alive connection is answered 503 (Plaid retries it), and the
   * webhooks in hand (bodies read) are answered before this resolves; connections still sending
   * a body are then closed. Calling it again returns the same promise.
   */
  close(): Promise<void>;
  readonly server: Server;
}

/**
 * The public server: `POST <WEBHOOK_PATH>` and nothing else, on a `node:http` server with our
 * time-outs, handing the body's exact bytes (the signature covers them, not a re-serialisation)
 * to the WebhookService.
 *
 * Hand-rolled rather than a framework route on purpose: this is the one hot HTTP path in the
 * system, and it has one route and no middleware. Measured side by side (bench/webhook-ingress,
 * full form, two rounds), NestJS's router on Fastify cost about 70 µs of CPU per webhook, a
 * fifth of the whole: the router, Fastify's content-type parsing (an AsyncResource per body),
 * its reply and the garbage they make. Health and metrics stay on the NestJS admin app.
 *
 * - A request (headers and body) not received within WEBHOOK_REQUEST_TIMEOUT_MS is answered 408
 *   and closed by node (checked every second), so slow clients cannot hold sockets for long.
 * - Before any body is read: only the webhook path (404), only POST (405), only a JSON content
 *   type (415), and no declared length over the cap (413). A streamed body that passes the cap
 *   is refused 413 as soon as it does. A 413 closes the connection: the rest of the body is not
 *   read. A client that waits for `100 Continue` before sending its body (`Expect:
 *   100-continue`) gets it only once those checks pass; otherwise the refusal comes instead, and
 *   the connection closes (the body it holds back is never read).
 * - Every answer is counted in webhook_requests_total, node's own 400 (a request it could not
 *   parse) and 408 among them.
 */
export function createPublicServer(
  config: WebhookIngressConfig,
  webhooks: Pick<WebhookService, 'receive'>,
  metrics: Pick<WebhookMetrics, 'request'> | undefined,
  logger: Logger,
): PublicServer {
  const { path, maxBodyBytes, requestTimeoutMs } = config.webhook;
  let stopping = false;
  let inHand = 0;
  let settled: (() => void) | undefined;

  const refuse = (req: IncomingMessage, res: ServerResponse, outcome: Refusal, reason: string) => {
    metrics?.request(outcome);
    const headers: Record<string, string> = {};
    if (outcome === 'method_not_allowed') headers.allow = 'POST';
    // Stop reading a body we will not take (or that was held back for a 100 Continue that will
    // not come); the client must open a new connection.
    if (outcome === 'too_large' || expectsContinue(req)) headers.connection = 'close';
    answer(res, STATUS[outcome], { error: outcome, reason }, headers);
  };

  /**
   * A webhook is in hand from the moment its body has been read until its answer has left (or
   * its connection closed): a pipelined answer still queued behind another is still in hand.
   */
  const takeInHand = (res: ServerResponse) => {
    inHand += 1;
    res.once('close', () => {
      inHand -= 1;
      if (inHand === 0) settled?.();
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if ((req.url ?? '').split('?', 1)[0] !== path) {
      metrics?.request('not_found');
      answer(res, 404, { error: 'not_found' }, expectsContinue(req) ? { connection: 'close' } : {});
      return;
    }
    if (stopping) {
      metrics?.request('unavailable');
      answer(
        res,
        503,
        { error: 'unavailable', reason: 'the ingress is stopping' },
        { 'retry-after': String(STOPPING_RETRY_AFTER_S), connection: 'close' },
      );
      return;
    }
    if (req.method !== 'POST') return refuse(req, res, 'method_not_allowed', 'only POST');
    if (!JSON_TYPE.test(req.headers['content-type'] ?? '')) {
      return refuse(req, res, 'unsupported_media_type', 'content-type must be application/json');
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      return refuse(req, res, 'too_large', `body larger than ${maxBodyBytes} bytes`);
    }
    if (expectsContinue(req)) res.writeContinue();
    let body: Buffer;
    try {
      body = await getRawBody(req, { limit: maxBodyBytes });
    } catch (error) {
      if ((error as { type?: string }).type === 'entity.too.large') {
        return refuse(req, res, 'too_large', `body larger than ${maxBodyBytes} bytes`);
      }
      // Aborted or malformed: there may be no one left to answer (a request that timed out was
      // answered 408 and counted by onClientError).
      if (answer(res, 400, { error: 'bad_request', reason: 'request could not be read' })) {
        metrics?.request('bad_request');
      }
      return;
    }
    takeInHand(res);
    const header = req.headers['plaid-verification'];
    const result = await webhooks.receive(body, Array.isArray(header) ? undefined : header);
    answer(res, result.status, result.body, result.headers);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      logger.error({ err: error }, 'webhook request failed');
      answer(res, 500, { error: 'internal' });
    });
  };

  /**
   * What node answers itself, counted: a request not received within the time-out (408) or not
   * parseable (400; 431 for oversized headers). The same answers as node's default handler,
   * which a listener replaces: only when nothing of a response has been written on the
   * connection yet, and the connection is then destroyed.
   */
  const onClientError = (error: NodeJS.ErrnoException, socket: Socket) => {
    const status =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 408
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? 431
          : 400;
    const current = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    // A connection the client reset has no one to answer.
    if (socket.writable && !current?.headersSent && error.code !== 'ECONNRESET') {
      metrics?.request(status === 408 ? 'timeout' : 'bad_request');
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    }
    socket.destroy(error);
  };

  const server = createServer(
    {
      requestTimeout: requestTimeoutMs,
      headersTimeout: requestTimeoutMs,
      connectionsCheckingInterval: 1000,
      keepAliveTimeout: 5000,
    },
    onRequest,
  );
  // With a listener, node leaves `100 Continue` to us: handle() sends it once the request passed
  // the checks that need no body.
  server.on('checkContinue', onRequest);
  server.on('clientError', onClientError);

  let closing: Promise<void> | undefined;
  const close = async () => {
    stopping = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // Each answer in hand is bounded by the service (the Kafka send's and Plaid's time-outs).
    if (inHand > 0) await new Promise<void>((resolve) => (settled = resolve));
    // What is left: connections kept alive after their last answer, and requests whose body was
    // still being read (node stops its request time-out once the server closes, so a stalled
    // client would otherwise hold the process): Plaid retries those.
    server.closeAllConnections();
    await closed;
  };

  return {
    server,
    listen: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.publicHttp.port, config.publicHttp.host, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    close: () => (closing ??= close()),
  };
}

/** Whether the client holds its body back until it is told `100 Continue`. */
function expectsContinue(req: IncomingMessage): boolean {
  return /^100-continue$/i.test(req.headers.expect ?? '');
}

/**
 * A JSON answer, unless the response has already been sent or its connection is gone; says
 * whether it was sent.
 */
function answer(
  res: ServerResponse,
  status: number,
  body: object,
  headers: Readonly<Record<string, string>> = {},
): boolean {
  if (res.headersSent || res.destroyed) return false;
  const json = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(json),
  });
  res.end(json);
  return true;
}
