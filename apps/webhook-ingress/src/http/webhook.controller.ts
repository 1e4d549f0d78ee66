import { Controller, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { WebhookService } from '../webhooks/webhook.service';

/**
 * `POST <WEBHOOK_PATH>`: Plaid's webhooks. The path is the public app's global prefix; the
 * server (public-server.ts) has already refused other methods, other content types and large
 * bodies, and hands over the body as its exact bytes.
 */
@Controller()
export class WebhookController {
  constructor(private readonly webhooks: WebhookService) {}

  @Post()
  async receive(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const header = req.headers['plaid-verification'];
    const token = Array.isArray(header) ? undefined : header;
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const answer = await this.webhooks.receive(body, token);
    await reply
      .status(answer.status)
      .headers(answer.headers ?? {})
      .send(answer.body);
  }
}
