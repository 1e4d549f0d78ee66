/**
 * The baseline for bench/webhook-ingress.bench.ts: a bare node:http server doing exactly what the
 * ingress does per webhook (the same limits, the same verification, the same replay ledger and
 * the same durable Kafka send, through the same pipeline) without NestJS and Express.
 * Configured like the ingress (WEBHOOK_INGRESS_PORT, KAFKA_*, PLAID_*, WEBHOOK_*).
 */
import { createLogger } from '@cashflow/observability';
import { createServer } from 'node:http';
import getRawBody from 'raw-body';
import { loadWebhookIngressConfig } from '../../apps/webhook-ingress/src/config';
import { createWebhookPipeline } from '../../apps/webhook-ingress/src/pipeline';

async function main() {
  const config = loadWebhookIngressConfig();
  const logger = createLogger({ service: 'bare-ingress', level: config.logLevel });
  const { publisher, service } = createWebhookPipeline(config, logger);
  await publisher.connect();

  const reply = (
    res: import('node:http').ServerResponse,
    status: number,
    body: object,
    headers = {},
  ) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
  };
  const server = createServer(
    {
      requestTimeout: config.webhook.requestTimeoutMs,
      headersTimeout: config.webhook.requestTimeoutMs,
      connectionsCheckingInterval: 1000,
      keepAliveTimeout: 5000,
    },
    (req, res) => {
      if (req.url !== config.webhook.path) return reply(res, 404, { error: 'not found' });
      if (req.method !== 'POST')
        return reply(res, 405, { error: 'method_not_allowed' }, { allow: 'POST' });
      if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
        return reply(res, 415, { error: 'unsupported_media_type' });
      }
      getRawBody(req, { limit: config.webhook.maxBodyBytes })
        .then(async (body) => {
          const header = req.headers['plaid-verification'];
          const answer = await service.receive(body, Array.isArray(header) ? undefined : header);
          reply(res, answer.status, answer.body, answer.headers);
        })
        .catch(() => reply(res, 413, { error: 'too_large' }));
    },
  );
  await new Promise<void>((resolve) =>
    server.listen(config.publicHttp.port, config.publicHttp.host, resolve),
  );
  logger.warn({ port: config.publicHttp.port }, 'bare ingress listening');
  const stop = () => {
    server.close();
    server.closeAllConnections();
    void publisher.disconnect().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`bare ingress failed: ${String(error)}\n`);
  process.exit(1);
});
