import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createServer, type RequestListener } from 'node:http';
import type { WebhookIngressConfig } from '../config';
import type { WebhookMetrics } from '../webhooks/webhook-metrics';

const JSON_TYPE = /^application\/json\s*(;|$)/i;

export type Refusal = 'method_not_allowed' | 'unsupported_media_type' | 'too_large';

/** Answers a request the public path will not take, counting it. */
export function refuse(
  reply: FastifyReply,
  metrics: WebhookMetrics,
  outcome: Refusal,
  reason: string,
): FastifyReply {
  metrics.request(outcome);
  if (outcome === 'method_not_allowed') reply.header('allow', 'POST');
  // Stop reading a body we will not take; the client must open a new connection.
  if (outcome === 'too_large') reply.header('connection', 'close');
  return reply.status(STATUS[outcome]).send({ error: outcome, reason });
}

const STATUS: Record<Refusal, number> = {
  method_not_allowed: 405,
  unsupported_media_type: 415,
  too_large: 413,
};

/**
 * The public app's HTTP server: Fastify (NestJS's faster adapter; the ingress is the one hot
 * HTTP path in the system) on a node:http server created with our time-outs.
 *
 * - A request (headers and body) not received within WEBHOOK_REQUEST_TIMEOUT_MS is answered 408
 *   and closed; node checks every second, so slow clients cannot hold sockets for long.
 * - Before any body is read, on the webhook path: only POST, only a JSON content type, and no declared length over
 *   the cap. A streamed body that passes the cap fails Fastify's body limit (413, answered by
 *   PublicErrorFilter).
 * - The body is kept as its exact bytes: the signature covers them, not a re-serialisation.
 */
export function publicWebhookAdapter(
  config: WebhookIngressConfig,
  metrics: WebhookMetrics,
): FastifyAdapter {
  const { maxBodyBytes, requestTimeoutMs } = config.webhook;
  const adapter = new FastifyAdapter({
    // No NestJS middleware runs on this app, so Fastify's Express-middleware layer is not needed.
    skipMiddie: true,
    bodyLimit: maxBodyBytes,
    serverFactory: (handler: RequestListener) =>
      createServer(
        {
          requestTimeout: requestTimeoutMs,
          headersTimeout: requestTimeoutMs,
          connectionsCheckingInterval: 1000,
          keepAliveTimeout: 5000,
        },
        handler,
      ),
  });
  const fastify = adapter.getInstance();
  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done) => {
    // Other paths go on to the 404 answer.
    if (request.url.split('?', 1)[0] !== config.webhook.path) {
      done();
      return;
    }
    if (request.method !== 'POST') {
      refuse(reply, metrics, 'method_not_allowed', 'only POST');
      return;
    }
    if (!JSON_TYPE.test(request.headers['content-type'] ?? '')) {
      refuse(reply, metrics, 'unsupported_media_type', 'content-type must be application/json');
      return;
    }
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      refuse(reply, metrics, 'too_large', `body larger than ${maxBodyBytes} bytes`);
      return;
    }
    done();
  });
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: maxBodyBytes },
    (_request, body, done) => done(null, body),
  );
  return adapter;
}
