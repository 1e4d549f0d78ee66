import { All, Controller, Post, Req, Res } from '@nestjs/common';
import type { Response } from 'express';
import { WebhookService } from '../webhooks/webhook.service';
import type { RequestWithRawBody } from './raw-body.middleware';

/**
 * `POST <WEBHOOK_PATH>`: Plaid's webhooks. The path is the public app's global prefix;
 * RawBodyMiddleware has already refused other methods, other content types and large bodies.
 */
@Controller()
export class WebhookController {
  constructor(private readonly webhooks: WebhookService) {}

  @Post()
  async receive(@Req() req: RequestWithRawBody, @Res() res: Response): Promise<void> {
    const header = req.headers['plaid-verification'];
    const token = Array.isArray(header) ? undefined : header;
    const answer = await this.webhooks.receive(req.rawBody ?? Buffer.alloc(0), token);
    res
      .status(answer.status)
      .set(answer.headers ?? {})
      .json(answer.body);
  }

  /** Every other method on the path: RawBodyMiddleware answers 405 before this runs. */
  @All()
  otherMethods(@Res() res: Response): void {
    res.status(405).set({ allow: 'POST' }).json({ error: 'method_not_allowed' });
  }
}
