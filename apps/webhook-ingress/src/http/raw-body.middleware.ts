import type { NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import getRawBody from 'raw-body';
import type { WebhookMetrics } from '../webhooks/webhook-metrics';

const JSON_TYPE = /^application\/json\s*(;|$)/i;

/** Requests carry the body's exact bytes here: the signature covers them, not a re-serialisation. */
export interface RequestWithRawBody extends Request {
  rawBody?: Buffer;
}

/**
 * Guards the public webhook path before any work is done: only POST with a JSON content type,
 * and a body no larger than the cap (413 from the Content-Length alone, or as soon as the bytes
 * read pass it). The body is read as raw bytes with `raw-body`, the library body-parser uses.
 */
export class RawBodyMiddleware implements NestMiddleware {
  constructor(
    private readonly maxBodyBytes: number,
    private readonly metrics: WebhookMetrics | undefined,
  ) {}

  use(req: RequestWithRawBody, res: Response, next: NextFunction): void {
    // Applied to each of the controller's routes (POST and the catch-all), so it can run twice.
    if (req.rawBody !== undefined) {
      next();
      return;
    }
    if (req.method !== 'POST') {
      this.refuse(res, 405, 'method_not_allowed', 'only POST', { allow: 'POST' });
      return;
    }
    if (!JSON_TYPE.test(req.headers['content-type'] ?? '')) {
      this.refuse(res, 415, 'unsupported_media_type', 'content-type must be application/json');
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.maxBodyBytes) {
      this.refuse(res, 413, 'too_large', `body larger than ${this.maxBodyBytes} bytes`, {
        connection: 'close',
      });
      return;
    }
    getRawBody(req, { limit: this.maxBodyBytes }).then(
      (body) => {
        req.rawBody = body;
        next();
      },
      (error: { type?: string }) => {
        if (error.type === 'entity.too.large') {
          this.refuse(res, 413, 'too_large', `body larger than ${this.maxBodyBytes} bytes`, {
            connection: 'close',
          });
        } else if (!res.headersSent && !req.destroyed) {
          res.status(400).json({ error: 'bad request', reason: 'body could not be read' });
        }
      },
    );
  }

  private refuse(
    res: Response,
    status: number,
    outcome: 'method_not_allowed' | 'unsupported_media_type' | 'too_large',
    reason: string,
    headers: Record<string, string> = {},
  ): void {
    this.metrics?.request(outcome);
    res.status(status).set(headers).json({ error: outcome, reason });
  }
}
