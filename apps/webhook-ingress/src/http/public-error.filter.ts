import { Catch, HttpException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from '@cashflow/observability';
import type { WebhookMetrics } from '../webhooks/webhook-metrics';
import { refuse } from './public-server';

/**
 * Errors on the public path get a short JSON answer and nothing more: Fastify's own refusals
 * (a streamed body over the cap, a body that could not be read) keep their status; anything
 * else is logged here and answered 500 without detail.
 */
@Catch()
export class PublicErrorFilter implements ExceptionFilter {
  constructor(
    private readonly metrics: WebhookMetrics,
    private readonly maxBodyBytes: number,
    private readonly logger: Logger,
  ) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (reply.sent) return;
    const status = error instanceof HttpException ? error.getStatus() : 500;
    if (status === 413) {
      refuse(reply, this.metrics, 'too_large', `body larger than ${this.maxBodyBytes} bytes`);
    } else if (status === 404) {
      reply.status(404).send({ error: 'not_found' });
    } else if (status < 500) {
      reply.status(status).send({ error: 'bad_request', reason: 'request could not be read' });
    } else {
      this.logger.error({ err: error }, 'webhook request failed');
      reply.status(500).send({ error: 'internal' });
    }
  }
}
